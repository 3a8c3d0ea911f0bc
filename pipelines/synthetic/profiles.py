"""Company profiles: the generator's knobs that make one simulated company unlike another (`simulate.profile`).

Everything is tuned and measured on one company unless the product is tried on warehouses unlike it. A `Profile`
holds what differs between data teams' warehouses: scale (how many seats an account has, how often its users
come and how many events a day they log), billing (monthly self-serve plans or annual contracts), what exists
(tickets, surveys and milestones, or none of them; add-on rows overlapping the base plan; a term end in the future
on an active account's rows) and the event and milestone vocabulary. The causes, the latent health and the CS team
are the same processes in every profile; the truth (`sim_truth`, `sim_causes`) is each profile's own.

- `demo`: today's company (the constants the generator always had; its frames are unchanged): SMB to Enterprise,
  about five events per active user-day, a fifth annual, every table.
- `self_serve`: many small accounts on monthly plans that can churn at every renewal, heavy use (about 200 events
  per active user-day, exported pre-aggregated: one row per session and event name with `event_count`), about a
  third of the paying accounts with an add-on row overlapping the base plan, term ends in the future, no tickets,
  surveys or milestones (the support and voice causes have no channel there, so they are off), its own event
  names.
- `enterprise`: few large accounts on annual contracts with tenures of up to six years, sparse events (about two
  per active user-day), rich tickets and surveys, term ends in the future, its own event and milestone names.

Each profile's params for the pipeline (event names, sources switched off) are in docs/profiles/<name>.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Event codes, the same in every profile (activity.py draws codes; a profile names them):
# 0 the login, 1-5 core events (1 and 2 are the value events), 6-14 other events, 15-16 outcomes won and lost.
EVENT_SLOTS = 17
MILESTONE_SLOTS = 5
OPTIONAL_TABLES = ("tickets", "surveys", "milestones")


@dataclass(frozen=True)
class Profile:
    """One simulated company's knobs; per-segment tuples are in segment order (the three `segments`)."""

    name: str
    # accounts: who signs up and on which terms
    segments: tuple[str, str, str] = ("SMB", "Mid-Market", "Enterprise")
    segment_share: tuple[float, float, float] = (0.62, 0.28, 0.10)
    seats_median: tuple[float, float, float] = (6.0, 22.0, 60.0)
    seats_range: tuple[tuple[int, int], ...] = ((1, 30), (8, 150), (30, 300))
    annual_share: tuple[float, float, float] = (0.2, 0.5, 0.8)  # share of accounts billed yearly, else monthly
    trial_share: tuple[float, float, float] = (0.5, 0.3, 0.1)
    pre_existing_share: float = 0.25  # share of accounts older than the history
    pre_existing_days: float = 730.0  # the oldest of them signed up this many days before the history's start
    # activity: scale and vocabulary
    active_logit: float = -1.28  # a user's daily activity logit at health 0
    extra_sessions: float = 0.3  # mean extra sessions per active user-day (Poisson, on top of one)
    session_events_log: float = 1.0  # log of the mean events per session at health 0 (after the login)
    aggregated_events: bool = False  # events exported as one row per session and event name with event_count
    event_names: tuple[str, ...] = (
        "login", "create_report", "run_automation", "configure_integration", "share_report", "create_project",
        "view_dashboard", "search", "comment", "upload_file", "export_data", "api_call", "invite_user",
        "update_settings", "view_billing", "win_deal", "lose_deal")
    milestones: tuple[str, ...] = ("workspace_created", "first_integration", "first_report", "team_invited",
                                   "first_automation")
    # what exists
    tables: frozenset[str] = frozenset(OPTIONAL_TABLES)  # the optional source tables the warehouse holds
    ticket_rate: tuple[float, float, float] = (0.6, 1.5, 3.5)  # tickets per account and month at health 0
    nps_answers: float = 0.35  # NPS answers per campaign = Poisson(this x users ** 0.6)
    # contracts
    plans: tuple[str, ...] = ("Starter", "Growth", "Scale", "Enterprise", "Add-on")
    seat_price: tuple[float, float, float, float] = (15.0, 30.0, 45.0, 65.0)  # per seat and month, by tier
    addon_share: float = 0.2  # share of paying accounts buying an add-on row that overlaps the base plan
    addon_on_plan_terms: bool = False  # the add-on is billed like the base plan (else monthly)
    future_term_ends: bool = False  # active rows end at their next renewal after the history (else open)
    # the churn hazard
    hazard_base: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({1: -4.0, 12: -2.2}))
    cause_scale: Mapping[str, float] = field(default_factory=dict)  # cause -> factor on simulate.causes' rate

    def __post_init__(self) -> None:
        if len(self.event_names) != EVENT_SLOTS or len(set(self.event_names)) != EVENT_SLOTS:
            raise ValueError(f"profile {self.name}: event_names must be {EVENT_SLOTS} distinct names")
        if len(self.milestones) != MILESTONE_SLOTS:
            raise ValueError(f"profile {self.name}: milestones must be {MILESTONE_SLOTS} names")
        unknown = set(self.tables) - set(OPTIONAL_TABLES)
        if unknown:
            raise ValueError(f"profile {self.name}: unknown optional tables {sorted(unknown)}")

    @property
    def login_event(self) -> str:
        return self.event_names[0]

    @property
    def core_events(self) -> tuple[str, ...]:
        return self.event_names[1:6]

    @property
    def value_events(self) -> tuple[str, ...]:
        return self.event_names[1:3]

    @property
    def outcome_events(self) -> dict[str, list[str]]:
        return {"won": [self.event_names[15]], "lost": [self.event_names[16]]}


DEMO = Profile(name="demo")

SELF_SERVE = Profile(
    name="self_serve",
    segments=("Solo", "Team", "Business"),
    segment_share=(0.55, 0.35, 0.10),
    seats_median=(1.0, 4.0, 12.0),
    seats_range=((1, 3), (2, 12), (5, 40)),
    annual_share=(0.02, 0.05, 0.15),
    trial_share=(0.7, 0.6, 0.4),
    pre_existing_share=0.2,
    pre_existing_days=365.0,
    active_logit=-0.8,
    extra_sessions=0.3,
    session_events_log=5.0,
    aggregated_events=True,
    event_names=(
        "app_open", "edit_doc", "publish_page", "connect_app", "share_link", "create_space",
        "open_doc", "search_docs", "add_comment", "upload_asset", "download_pdf", "api_request", "invite_member",
        "change_settings", "view_invoice", "form_converted", "form_abandoned"),
    milestones=("space_created", "app_connected", "page_published", "member_invited", "first_api_call"),
    tables=frozenset(),
    plans=("Basic", "Plus", "Pro", "Business", "Add-on"),
    seat_price=(8.0, 12.0, 20.0, 30.0),
    addon_share=0.5,
    future_term_ends=True,
    hazard_base=MappingProxyType({1: -3.4, 12: -2.0}),
    cause_scale=MappingProxyType({"support_pain": 0.0, "unhappy_voice": 0.0}),
)

ENTERPRISE = Profile(
    name="enterprise",
    segments=("Corporate", "Enterprise", "Strategic"),
    segment_share=(0.5, 0.35, 0.15),
    seats_median=(40.0, 90.0, 200.0),
    seats_range=((15, 120), (40, 300), (100, 600)),
    annual_share=(1.0, 1.0, 1.0),
    trial_share=(0.05, 0.0, 0.0),
    pre_existing_share=0.6,
    pre_existing_days=2190.0,
    active_logit=-2.6,
    extra_sessions=0.05,
    session_events_log=-0.2,
    event_names=(
        "sso_login", "run_analysis", "schedule_pipeline", "connect_source", "publish_dashboard", "create_workspace",
        "open_dashboard", "run_query", "annotate", "import_file", "export_csv", "sdk_call", "add_user",
        "edit_permissions", "view_usage", "close_won", "close_lost"),
    milestones=("tenant_provisioned", "sso_configured", "first_analysis", "team_rollout", "first_pipeline"),
    ticket_rate=(3.0, 6.0, 10.0),
    nps_answers=0.8,
    plans=("Standard", "Professional", "Enterprise", "Enterprise Plus", "Add-on"),
    seat_price=(40.0, 60.0, 85.0, 110.0),
    addon_share=0.3,
    addon_on_plan_terms=True,
    future_term_ends=True,
    hazard_base=MappingProxyType({1: -4.0, 12: -2.6}),
)

PROFILES = MappingProxyType({p.name: p for p in (DEMO, SELF_SERVE, ENTERPRISE)})


def get_profile(name: str) -> Profile:
    """The profile of that name.

    Raises:
        ValueError: one line naming the unknown profile and the known ones.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return PROFILES[name]
