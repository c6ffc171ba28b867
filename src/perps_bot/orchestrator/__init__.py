"""The orchestrator: one event loop through signal, risk, execution and metrics."""
