"""The homeostatic reconciler: observe, plan a pure diff, apply."""
