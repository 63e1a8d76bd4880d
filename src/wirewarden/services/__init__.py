"""Use cases: validate, persist in one transaction, bump the revision, apply, audit."""
