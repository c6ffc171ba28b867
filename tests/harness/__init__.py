"""Test kit for the orchestrator: scripted feeds and strategies (and, in
`tests.harness.venue`, a scripted venue). Kept out of the product package on purpose:
the product never depends on its test tooling."""
