"""Run a benchmark against PostgreSQL: a private PostgreSQL 15 cluster (tests/pg.py: Unix
socket only, removed afterwards however the run ends), one fresh database, and the command
run with WIREWARDEN_DATABASE_URL pointing at it. As root, from the repository root:

    .venv/bin/python bench/with_postgres.py .venv/bin/python bench/core_10k.py
    .venv/bin/python bench/with_postgres.py -- .venv/bin/python bench/tsdb_write.py --url {url}

`{url}` in an argument is replaced by the database's URL. Its exit status is the command's.
The socket works across network namespaces, so benchmarks that run in their own (core_10k)
reach it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pg import Cluster, unavailable


def main() -> int:
    argv = [a for a in sys.argv[1:] if a != "--"] if sys.argv[1:2] == ["--"] else sys.argv[1:]
    if not argv:
        print(__doc__)
        return 2
    why = unavailable()
    if why:
        print(why, file=sys.stderr)
        return 1
    cluster = Cluster.start()
    try:
        url = cluster.url(cluster.create_database())
        print(f"PostgreSQL 15 at {url}", flush=True)
        command = [a.replace("{url}", url) for a in argv]
        env = dict(os.environ, WIREWARDEN_DATABASE_URL=url)
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
