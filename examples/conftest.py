# An example project's own tests/ run inside that project's environment, where the example is
# installed (its hatch matrix, or a copy's CI); in this repository's dev venv it is not, so the
# monorepo session leaves them out. examples/test_examples.py tests every example from a copy.
collect_ignore_glob = ["*/tests/*"]
