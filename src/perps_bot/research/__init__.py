"""Evidence beyond one run (SPEC 13): parameter optimisation on Optuna, trials run as
full backtests through the one orchestrator on local processes or a Ray cluster, and
walk-forward analysis whose test windows make one out-of-sample run.

This layer sits above the orchestrator (it runs bots) and below the CLI.
"""
