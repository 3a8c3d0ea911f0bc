"""The synthetic B2B SaaS company behind `churn simulate` and `make demo`, with its true hazards (the oracle).

Start at `generate.py` (`generate_warehouse`, and the model in its docstring); `config.py` holds
`SimulationConfig` and the causes' names and groups, and `oracle.py` `compute_oracle_probabilities` and
`true_causes` (and `nowcast_probabilities`, reading the nowcast oracle `nowcast.py` builds), the other names used
outside. Each part of the company is one module: `accounts.py` (sign-ups,
firmographics, commercial terms), `health.py` (latent traits and daily health), `causes.py` (the churn causes'
episodes and sim_causes), `hazard.py` (the churn hazard, one term per cause, with the tickets and NPS answers it
reads), `support.py` (tickets, NPS, CES, surveys), `contracts.py` (trials, renewals, churn, upgrades, price shocks,
re-activations, add-ons, subscriptions and sim_truth), `activity.py` (users, events, milestones). Shared by them:
`clock.py` (time as seconds since the start), `draws.py` (draw primitives), `company.py` (what later tables read
once contracts are drawn) and `frames.py` (id and label columns).
"""
