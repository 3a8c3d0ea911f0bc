"""`churn kpis` end to end: on the hand-built warehouse (the table the stage writes is the one computed by hand,
what is left out and pending is said), and on a simulated warehouse (every KPI for each month and segment, and
churn, retention and time to value in line with the simulation's own settings)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from features.kpis.definitions import KPIS, expand_kpis, kpis_markdown
from tests import e2e
from tests.features.kpi_warehouse import FEATURES, KPI_CONFIG, LABEL, expected_all, kpi_tables

ROOT = Path(__file__).resolve().parents[2]


def _params(root: Path, **sections) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["warehouse"]["url"] = f"duckdb://{root}/warehouse.duckdb"
    params["mlflow"] |= {"tracking_uri": f"sqlite:///{root}/mlruns.db", "artifact_root": str(root / "mlruns")}
    params |= sections
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "params.yaml"


def churn(params: Path, *args: str, code: int = 0) -> str:
    """`churn` run from the project folder (the validation page lands there), an error through an expected error."""
    return e2e.churn(params, *args, expect=code)


def errors(output: str) -> list[str]:
    """The lines of the error message (the first starts with `error:`)."""
    lines = output.rstrip("\n").splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("error: ")):]


def execute(root: Path, *statements: str) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        for statement in statements:
            con.execute(statement)


def query(root: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).df()


def _hand_warehouse(root: Path, drop: tuple[str, ...] = ()) -> Path:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        for name, frame in kpi_tables().items():
            if name not in drop:
                con.register("frame", frame)
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
                con.unregister("frame")
    return _params(root, sources={}, label={"horizon_days": 90, "grace_days": LABEL.grace_days},
                   kpis=KPI_CONFIG.model_dump(), features=FEATURES.model_dump())


def test_churn_kpis_writes_the_hand_computed_table_and_says_what_is_pending(tmp_path):
    output = churn(_hand_warehouse(tmp_path), "kpis")
    assert "churn and retention for 2024-03 pending: known from 2024-04-11" in output
    assert "left out" not in output
    assert ("latest MRR 1,960 (2024-03), Logo churn rate 14.3% (2024-02), Net revenue retention (month) 126.8% "
            "(2024-02), NPS -100 (2024-02)") in output
    table = query(tmp_path, "SELECT * FROM churn_kpis WHERE segment = 'all'")
    got = {(f"{r.month:%Y-%m-%d}", r.kpi): tuple(None if pd.isna(x) else x for x in (r.value, r.numerator,
                                                                                    r.denominator))
           for r in table.itertuples()}
    assert got == expected_all()
    latest = query(tmp_path, "SELECT kpi, month FROM churn_kpis_latest WHERE segment = 'all'")
    newest = dict(zip(latest.kpi, latest.month.dt.strftime("%Y-%m-%d"), strict=True))
    assert newest["mrr"] == "2024-03-01" and newest["logo_churn_rate"] == "2024-02-01"
    assert newest["first_value_by_day_7"] == "2024-02-01" and len(latest) == len(newest)
    before = query(tmp_path, "SELECT * FROM churn_kpis ORDER BY ALL")
    churn(tmp_path / "params.yaml", "kpis")
    pd.testing.assert_frame_equal(query(tmp_path, "SELECT * FROM churn_kpis ORDER BY ALL"), before)


def test_a_warehouse_without_surveys_or_tickets_leaves_their_kpis_out_and_says_so(tmp_path):
    output = churn(_hand_warehouse(tmp_path, drop=("surveys", "tickets")), "kpis")
    lines = [line for line in output.splitlines() if "KPIs left out" in line]
    assert len(lines) == 1
    assert "nps, csat, ces (needs surveys)" in lines[0]
    assert "first_contact_resolution (needs tickets.resolved_at, tickets.first_contact_resolved)" in lines[0]
    assert "median_resolution_hours (needs tickets.resolved_at)" in lines[0]
    kpis = set(query(tmp_path, "SELECT DISTINCT kpi FROM churn_kpis").kpi)
    assert kpis & {"nps", "csat", "ces", "first_contact_resolution", "median_resolution_hours"} == set()
    assert {"mrr", "logo_churn_rate", "stickiness", "first_value_by_day_7"} <= kpis


def test_a_breakdown_column_the_warehouse_lacks_is_said_and_all_accounts_are_reported(tmp_path):
    params = _hand_warehouse(tmp_path)
    settings = yaml.safe_load(params.read_text())
    settings["kpis"]["segment_by"] = "region"                  # a contract column the hand warehouse does not have
    params.write_text(yaml.safe_dump(settings))
    output = churn(params, "kpis")
    assert ("  ! kpis.segment_by: accounts.region is not in the warehouse, so the KPIs are for all accounts only"
            in output.splitlines())
    assert set(query(tmp_path, "SELECT DISTINCT segment FROM churn_kpis").segment) == {"all"}


def test_kpis_list_and_markdown_come_from_the_definitions(tmp_path):
    params = _params(tmp_path)
    listed = churn(params, "kpis", "--list")
    specs = expand_kpis(KPIS, [7, 14, 30, 60, 90])
    assert [line.split()[0] for line in listed.splitlines()] == [s.name for s in specs]
    out = tmp_path / "docs" / "KPIS.md"
    assert f"wrote {len(specs)} KPIs" in churn(params, "kpis", "--markdown", str(out))
    assert out.read_text() == kpis_markdown(specs)


@pytest.mark.parametrize("command", ["kpis", "features"])
def test_a_markdown_path_that_cannot_be_written_is_one_line(tmp_path, command):
    params = _params(tmp_path)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    for path, reason in ((tmp_path / "a_folder", "Is a directory"), (tmp_path / "a_file" / "KPIS.md", "File exists"),
                         (Path("/proc/none/KPIS.md"), "No such file or directory")):
        lines = errors(churn(params, command, "--markdown", str(path), code=1))
        assert len(lines) == 1 and lines[0].startswith("error: --markdown: cannot write ") and reason in lines[0]
    assert (tmp_path / "a_file").read_text() == "x" and list((tmp_path / "a_folder").iterdir()) == []


def test_data_without_a_complete_month_is_one_line(tmp_path):
    frames = kpi_tables()
    frames["events"] = frames["events"][frames["events"].event_at.between("2024-01-02", "2024-01-20")]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        for name, frame in frames.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
    output = churn(_params(tmp_path, sources={}), "kpis", code=1)
    assert output.strip().splitlines() [-1] == ("error: kpis: the data (2024-01-02 to 2024-01-10) holds no complete "
                                                "calendar month")


def test_a_single_month_has_its_kpis_and_churn_pending_not_empty(tmp_path):
    frames = kpi_tables()
    # The events end on 4 March 2023: February 2023 is the only complete month, and its churn is not known yet.
    events = frames["events"]
    last = events.iloc[:1].assign(event_at=pd.Timestamp("2023-03-04 09:00")).astype(events.dtypes)
    frames["events"] = pd.concat([events[events.event_at < "2023-03-01"], last], ignore_index=True)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        for name, frame in frames.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
    output = churn(_params(tmp_path, sources={}, label={"horizon_days": 90, "grace_days": 10}), "kpis")
    notes = [line for line in output.splitlines() if line.startswith("  ! ")]
    assert "  ! churn and retention for 2023-02 pending: known from 2023-03-11 (label.grace_days after the month)" \
        in notes
    assert not any("logo_churn_rate" in note for note in notes)       # pending, not "no rows"
    assert set(query(tmp_path, "SELECT DISTINCT month FROM churn_kpis").month.astype(str)) == {"2023-02-01"}
    assert "churn_kpis: " in output.splitlines()[-1] and "1 months × " in output.splitlines()[-1]


def test_invalid_sources_and_a_segment_named_all_are_named_in_one_run_and_nothing_is_written(tmp_path):
    """NaN MRR crashed the cast to decimal with a traceback, negative MRR gave negative MRR KPIs, and accounts of a
    segment named `all` were counted twice in the rows of all accounts."""
    params = _hand_warehouse(tmp_path)
    churn(params, "kpis")
    before = query(tmp_path, "SELECT * FROM churn_kpis ORDER BY ALL")
    execute(tmp_path, "UPDATE subscriptions SET mrr = 'nan'::DOUBLE WHERE account_id = 'steady'",
            "UPDATE subscriptions SET mrr = -60 WHERE account_id = 'gone'",
            "UPDATE accounts SET segment = 'all' WHERE account_id IN ('upgrade', 'quick')")
    lines = errors(churn(params, "kpis", code=1))
    assert len(lines) == 2
    assert lines[0].startswith("error: validation: 2 error-level failure(s): subscriptions.mrr finite")
    assert "subscriptions.mrr non_negative (≥ 0) fails on 2: -60 (×2)" in lines[0]
    assert lines[1] == ("accounts.segment: 2 account(s) have the segment 'all', the name churn_kpis gives all "
                        "accounts together (rule: no segment is named 'all'); rename it in the warehouse, or set "
                        "kpis.segment_by to another column or null")
    pd.testing.assert_frame_equal(query(tmp_path, "SELECT * FROM churn_kpis ORDER BY ALL"), before)


def test_a_churn_kpis_of_another_shape_is_named_before_the_work_and_kept(tmp_path):
    params = _hand_warehouse(tmp_path)
    execute(tmp_path, "CREATE TABLE churn_kpis (month DATE, segment VARCHAR, kpi VARCHAR, value VARCHAR)",
            "INSERT INTO churn_kpis VALUES (DATE '2023-01-01', 'all', 'mrr', '5')")
    output = churn(params, "kpis", code=1)
    assert errors(output) == ["error: table churn_kpis: lacks column(s) numerator, denominator; column value is "
                              "string, not floating (written by another version or tool; drop it and `churn kpis` "
                              "creates it again)"]
    assert "✓ kpis" not in output    # found before the KPIs are computed
    assert query(tmp_path, "SELECT * FROM churn_kpis").value.tolist() == ["5"]


def test_a_table_where_the_latest_view_goes_is_one_line_and_nothing_is_written(tmp_path):
    params = _hand_warehouse(tmp_path)
    churn(params, "kpis")
    before = query(tmp_path, "SELECT * FROM churn_kpis ORDER BY ALL")
    execute(tmp_path, "DROP VIEW churn_kpis_latest", "CREATE TABLE churn_kpis_latest (kpi VARCHAR)",
            "UPDATE surveys SET score = 10 WHERE response_id = 'r2'")   # a new run would change the NPS
    lines = errors(churn(params, "kpis", code=1))
    assert len(lines) == 1
    assert lines[0].startswith("error: table churn_kpis and view churn_kpis_latest not replaced, nothing written: ")
    assert "churn_kpis_latest" in lines[0].split("nothing written: ")[1]
    pd.testing.assert_frame_equal(query(tmp_path, "SELECT * FROM churn_kpis ORDER BY ALL"), before)


HOSTILE = ["<script>alert(1)</script>", "=HYPERLINK(\"http://evil.example\")", "Line\nbreak",
           "\x1b[2J\x1b]8;;http://evil.example\x07click", "L" + "o" * 5000 + "ng"]


def test_the_run_line_counts_what_was_written_and_shows_hostile_segments_as_short_text(tmp_path):
    """Segment values are data: a newline broke the run's one line, an escape sequence drove the terminal (clear
    screen, hyperlink), a 5,000-character name and hundreds of segments made one enormous line. The KPIs counted were
    those asked for, not those the table holds, and a day of the curve no sign-up was observed for went unsaid."""
    params = _hand_warehouse(tmp_path)
    settings = yaml.safe_load(params.read_text())
    settings["kpis"]["ttv_days"] = [7, 30, 60, 3000]
    params.write_text(yaml.safe_dump(settings))
    names = HOSTILE + [f"S{i:02d}" for i in range(20)]
    accounts = query(tmp_path, "SELECT account_id FROM accounts ORDER BY account_id").account_id.tolist()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        for account, name in zip(accounts, names, strict=False):
            con.execute("UPDATE accounts SET segment = ? WHERE account_id = ?", [name, account])
    output = churn(params, "kpis")
    assert "\x1b" not in output
    line = output.rstrip("\n").splitlines()[-1]
    # 49 asked for: 33 + 4 curves × 4 days; no rows for day 3000, the slowest quarter and no first value (see below)
    assert line.startswith("churn_kpis: 43 KPIs, 14 months × 12 segments (")
    assert "'\\x1b[2J\\x1b]8;;http://evil.example\\x07…" in line and "'Line\\nbreak'" in line
    assert "Looooo" in line and "o" * 60 not in line and ", and 4 more)" in line and len(line) < 600
    notes = [n for n in output.splitlines() if n.startswith("  ! ")]
    assert ("  ! kpis.ttv_days: no sign-up is observed for 3000 days (the data spans 424): first_value_by_day_3000, "
            "onboarded_by_day_3000, trial_converted_by_day_3000, expanded_by_day_3000 have no rows") in notes
    assert "  ! no rows (nothing to count in any month): churn_rate_ttv_q4, churn_rate_ttv_none" in notes
    assert len(set(query(tmp_path, "SELECT DISTINCT kpi FROM churn_kpis").kpi)) == 43


def test_a_first_value_target_for_a_segment_no_account_has_is_said(tmp_path):
    params = _hand_warehouse(tmp_path)
    settings = yaml.safe_load(params.read_text())
    settings["features"]["ttv_targets"] = {"SMB": 14, "Ent": 45, "*": 30}    # the segment is ENT
    params.write_text(yaml.safe_dump(settings))
    output = churn(params, "features", "--as-of", "2024-03-01")
    assert ("  ! features.ttv_targets: no account has the segment 'Ent' (accounts.segment, compared exactly): that "
            "target applies to no one") in output.splitlines()


# --- on a simulated warehouse ------------------------------------------------------------------------------------

SIMULATION = {"accounts": 600, "months": 18, "seed": 5, "start": "2024-01-01"}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kpis_simulated")
    params = _params(root, simulate=SIMULATION)
    churn(params, "simulate")
    churn(params, "kpis")
    return root


@pytest.mark.slow
def test_every_kpi_is_written_for_each_month_and_segment(simulated):
    table = query(simulated, "SELECT * FROM churn_kpis")
    months = pd.date_range("2024-01-01", "2025-06-01", freq="MS")
    settled = months[:-2]            # data ends 2025-06-30: May's churn is known on 2025-07-01
    segments = {"all", "SMB", "Mid-Market", "Enterprise"}
    assert set(table.segment) == segments
    specs = expand_kpis(KPIS, [7, 14, 30, 60, 90])
    assert set(table.kpi) == {s.name for s in specs}
    per_month = {s.name: (settled if s.settles else months) for s in specs if s.grain == "month"}
    # The trailing-12-month retention starts once twelve months lie behind. Churn by TTV quartile needs accounts
    # that signed up during the data and were active on a 1st: from the third month (the simulation starts empty).
    per_month["gross_revenue_retention_12m"] = per_month["net_revenue_retention_12m"] = settled[11:]
    for quartile in ("q1", "q2", "q3", "q4"):
        per_month[f"churn_rate_ttv_{quartile}"] = settled[2:]
    none = per_month.pop("churn_rate_ttv_none")    # active accounts with no first value are rare: all accounts only
    missing = {(name, segment): sorted(set(wanted) - set(pd.to_datetime(table[(table.kpi == name)
                                                                              & (table.segment == segment)].month)))
               for name, wanted in per_month.items() for segment in segments}
    missing[("churn_rate_ttv_none", "all")] = sorted(set(none[1:]) - set(pd.to_datetime(
        table[(table.kpi == "churn_rate_ttv_none") & (table.segment == "all")].month)))
    # A month and segment without survey answers of a kind has no row for it: check the warehouse has none.
    answered = query(simulated, """SELECT date_trunc('month', responded_at) AS month, a.segment,
                                   lower(survey_type) AS kind FROM surveys s JOIN accounts a USING (account_id)""")
    # Quartiles of days to first value are drawn over all accounts: a segment whose accounts that month are all slower
    # (or all faster) has no row for a quartile, but has rows for others.
    quartile_rows = table[table.kpi.str.match(r"churn_rate_ttv_q\d")]
    covered = set(zip(quartile_rows.segment, pd.to_datetime(quartile_rows.month), strict=True))
    for (name, segment), months_missing in missing.items():
        if name in ("ces", "csat", "nps"):
            kinds = answered[(answered.kind == name) & (answered.segment == segment)]
            months_missing = [m for m in months_missing if m in set(pd.to_datetime(kinds.month))]
        if name.startswith("churn_rate_ttv_q") and segment != "all":
            months_missing = [m for m in months_missing if (segment, m) not in covered]
        assert not months_missing, (name, segment, months_missing[:3])
    cohorts = table[table.kpi == "first_value_by_day_7"]
    assert set(pd.to_datetime(cohorts[cohorts.segment == "all"].month)) == set(months)


@pytest.mark.slow
def test_the_mrr_bridge_closes_on_the_simulated_warehouse(simulated):
    wide = query(simulated, "SELECT * FROM churn_kpis WHERE segment = 'all'").pivot(
        index="month", columns="kpi", values="value")
    moved = (wide.new_mrr + wide.reactivation_mrr + wide.expansion_mrr - wide.contraction_mrr - wide.churned_mrr)
    checked = (wide.mrr - wide.mrr.shift(1) - moved).dropna()
    assert len(checked) == 15 and (checked.abs() < 1e-6).all()


@pytest.mark.slow
def test_simulated_churn_matches_the_true_hazards_of_the_simulation(simulated):
    """The simulation draws churn at renewals with a known probability (sim_truth.hazard, drawn renewals): the
    expected churns of a month are the sum of its renewals' hazards. The measured logo churn over the settled months
    must agree with it within sampling noise (a binomial count: 3 standard deviations)."""
    truth = query(simulated, """
        SELECT date_trunc('month', renewal_at) AS month, SUM(hazard) AS expected, SUM(hazard * (1 - hazard)) AS var
        FROM sim_truth WHERE drawn GROUP BY ALL""")
    kpis = query(simulated, "SELECT month, numerator AS churned, denominator AS active FROM churn_kpis "
                            "WHERE kpi = 'logo_churn_rate' AND segment = 'all'")
    both = kpis.merge(truth, on="month")
    assert len(both) == 16
    churned, expected, sd = both.churned.sum(), both.expected.sum(), np.sqrt(both["var"].sum())
    assert abs(churned - expected) < 3 * sd, (churned, expected, sd)
    assert 0.005 < churned / both.active.sum() < 0.05       # a monthly churn rate a B2B SaaS company would have


@pytest.mark.slow
def test_simulated_trials_convert_when_the_simulation_ends_them(simulated):
    """Every simulated trial lasts exactly 14 days and converts at its end: the median trial-to-paid days is 14 in
    every cohort, and no trial converts by day 7."""
    table = query(simulated, "SELECT * FROM churn_kpis WHERE segment = 'all'")
    medians = table[table.kpi == "median_days_trial_to_paid"].value
    assert len(medians) >= 15 and (medians == 14.0).all()
    assert (table[table.kpi == "trial_converted_by_day_7"].value == 0.0).all()
