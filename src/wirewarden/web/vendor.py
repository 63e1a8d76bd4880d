"""The front-end libraries the dashboard serves under /static/vendor/, by the name it serves
each under, with its path inside node_modules (pinned by package-lock.json).

Plain data on purpose: the wheel build (setup.py) reads this file without importing the
package (whose dependencies the build environment lacks) to copy the same files into
wirewarden/web/static/vendor/, and web/ui/assets.py serves them.
"""

VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    "jsvectormap.min.js": "jsvectormap/dist/jsvectormap.min.js",
    "jsvectormap.min.css": "jsvectormap/dist/jsvectormap.min.css",
    "jsvectormap-world.js": "jsvectormap/dist/maps/world.js",
}
