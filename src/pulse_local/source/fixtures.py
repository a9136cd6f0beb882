"""Deterministic fixture data: tenants, users, assessments and Typeform webhook payloads.

``generate(scale, seed, out_dir)`` writes (same scale and seed -> byte-identical files)::

    manifest.json          counts, scale, seed, generator version
    organizations.json     tenants with slug and webhook secret
    teams.json users.json  users with department/role/location/team at creation time
    user_changes.json      later attribute changes (for SCD2), ordered by effective_at
    assessments.json       forms with questions (some reverse keyed, some optional)
    runs.json              assessment runs (every user of the tenant is a participant)
    webhooks/<slug>.jsonl  one webhook body per line, exactly the bytes to POST

Per tenant (``scale`` tenants): 250 users in 5 teams, 2 assessments with 3 two-week runs each
over 12 weeks, about 1,000 responses (each user answers a run with probability 2/3, earlier in
the window more often), 10 % with optional questions skipped, 2 % re-delivered verbatim
(Typeform retries) and 1 % revised (same token, new event id, later submitted_at).

The hot loop builds payloads from pre-rendered JSON fragments (no pydantic, no json.dumps per
response). Each tenant draws from its own random stream (seeded from the seed and its index), so
tenants are generated in parallel processes (`default_processes`) and the bytes are the same
however they are split.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import pickle
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse_local.errors import PulseError

#: 2: each tenant draws from its own random stream (so tenants can be generated in parallel).
GENERATOR_VERSION = 2
USERS_PER_TENANT = 250
TEAMS = ("Platform", "Growth", "Support", "Finance", "People")
DEPARTMENTS = ("Engineering", "Sales", "Customer Success", "Finance", "HR", "Marketing")
ROLES = ("Individual Contributor", "Senior IC", "Team Lead", "Manager", "Director")
LOCATIONS = ("Brussels", "Lisbon", "Berlin", "Remote", "Dublin", "Warsaw")
FIRST = ("Ana", "Bram", "Chloé", "Dmitri", "Eva", "Farid", "Greta", "Hiro", "Inès", "Jonas",
         "Kofi", "Lena", "Mateo", "Noor", "Olga", "Pieter", "Qi", "Rosa", "Sven", "Zoë")
LAST = ("Janssens", "Silva", "Müller", "Kowalski", "O'Brien", "Dubois", "Nakamura", "Haddad",
        "Peeters", "Costa", "Nowak", "Schmidt", "Ferreira", "Murphy", "Maes", "Yilmaz")
COMMENTS = ("", "Great team spirit", "Too many meetings", "Très bien 👍",
            "Workload is heavy this quarter", "الإدارة داعمة جدا", "Need clearer goals 🎯",
            "'; drop table responses; --", "Tools are slow", "Happy overall")
#: Epoch of the data: the first run opens on Monday 2 September 2024, 00:00 UTC.
EPOCH = 1725235200
WEEK = 7 * 24 * 3600

#: (ref, title, type, scale, reverse_keyed, required)
ENGAGEMENT = (
    ("eng_proud", "I am proud to work here", "opinion_scale", (1, 5), False, True),
    ("eng_recommend", "I would recommend this company as a place to work", "opinion_scale", (1, 5), False, True),
    ("eng_leave", "I often think about leaving", "opinion_scale", (1, 5), True, True),
    ("eng_growth", "I see a path to grow here", "opinion_scale", (1, 5), False, True),
    ("eng_recognition", "I get recognition for good work", "opinion_scale", (1, 5), False, True),
    ("eng_overlooked", "My ideas are overlooked", "opinion_scale", (1, 5), True, True),
    ("eng_manager", "My manager supports me", "opinion_scale", (1, 5), False, True),
    ("eng_goals", "I know what is expected of me", "opinion_scale", (1, 5), False, True),
    ("eng_burnout", "I feel burned out by my work", "opinion_scale", (1, 5), True, False),
    ("eng_tools", "I have the tools I need", "opinion_scale", (1, 5), False, False),
    ("eng_remote", "Do you mostly work remotely?", "yes_no", None, False, False),
    ("eng_comment", "Anything else?", "long_text", None, False, False),
)
WELLBEING = (
    ("wb_energy", "How energised do you feel?", "rating", (0, 10), False, True),
    ("wb_stress", "How stressed do you feel?", "rating", (0, 10), True, True),
    ("wb_balance", "How is your work-life balance?", "rating", (0, 10), False, True),
    ("wb_sleep", "How well do you sleep?", "rating", (0, 10), False, False),
    ("wb_overtime", "How often do you work overtime?", "rating", (0, 10), True, False),
    ("wb_mood", "Pick the word for your week", "multiple_choice", None, False, True),
    ("wb_comment", "What would help?", "long_text", None, False, False),
)
FORMS = (("Engagement pulse", ENGAGEMENT), ("Wellbeing check-in", WELLBEING))
ANSWER_TYPE = {"opinion_scale": "number", "rating": "number", "yes_no": "boolean",
               "multiple_choice": "choice", "long_text": "text"}


def _dumps(value: Any, ascii_only: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, sort_keys=True, separators=(",", ":"))


def _write_lines(path: Path, lines: list[str], private: bool = False) -> None:
    """A JSON list of already rendered items, one per line (diff-friendly and fast).

    `private`: the file holds secrets (the tenants' webhook secrets), so only its owner may
    read it (0600 from creation, also when it already existed)."""
    text = "[\n" + ",\n".join(lines) + "\n]\n"
    if not private:
        path.write_text(text, encoding="utf-8")
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_json(path: Path, value: Any) -> None:
    """Lists as one compact object per line (`_write_lines`); other values indented."""
    if isinstance(value, list):
        _write_lines(path, [_dumps(item) for item in value])
    else:
        path.write_text(json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n",
                        encoding="utf-8")


def _uuid(rng: random.Random) -> str:
    """A random version-4 UUID drawn from `rng` (same text as ``str(uuid.UUID(...))``)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class _Question:
    id: str
    field_id: str
    ref: str
    title: str
    type: str
    scale: tuple[int, int] | None
    reverse: bool
    required: bool
    #: Pre-rendered answer JSON per attitude 0..4 (reverse keyed for the respondent), or empty
    #: for free text, which picks one of `fragments` at random.
    by_draw: tuple[str, ...]
    fragments: tuple[str, ...]


def _fragments(ref: str, field_id: str, qtype: str, scale: tuple[int, int] | None,
               reverse: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pre-rendered answer JSON: (one per attitude 0..4, free-text alternatives)."""
    # Payload fragments are ASCII (non-ASCII as \\u escapes): one emoji would otherwise make
    # every body a 4-byte-per-character string and slow the hot loop down several times.
    field = _dumps({"id": field_id, "ref": ref, "type": qtype}, ascii_only=True)
    kind = ANSWER_TYPE[qtype]
    if scale is not None:
        lo, hi = scale
        # The attitude (0 unhappy .. 4 happy) maps onto the scale; reverse-keyed statements are
        # answered the other way round, so scoring has to reverse them back.
        values = [lo + (d * (hi - lo) + 2) // 4 for d in range(5)]
        return tuple(f'{{"field":{field},"number":{lo + hi - v if reverse else v},"type":"number"}}'
                     for v in values), ()
    if kind == "boolean":
        return tuple(f'{{"boolean":{b},"field":{field},"type":"boolean"}}'
                     for b in ("false", "false", "true", "true", "true")), ()
    if kind == "choice":
        return tuple(f'{{"choice":{{"label":{_dumps(m, True)}}},"field":{field},"type":"choice"}}'
                     for m in ("Rough", "Okay", "Okay", "Good", "Great")), ()
    return (), tuple(f'{{"field":{field},"text":{_dumps(c, True)},"type":"text"}}' for c in COMMENTS if c)


def _templates(rng: random.Random) -> list[tuple[str, list[_Question]]]:
    """The form templates with field ids (shared by all tenants, like a copied Typeform)."""
    templates = []
    for title, spec in FORMS:
        questions = []
        for ref, qtitle, qtype, qscale, reverse, required in spec:
            field_id = f"{rng.getrandbits(48):012x}"
            by_draw, texts = _fragments(ref, field_id, qtype, qscale, reverse)
            questions.append(_Question("", field_id, ref, qtitle, qtype, qscale, reverse,
                                       required, by_draw, texts))
        templates.append((title, questions))
    return templates


#: Cumulative weights of the five attitude values per mood (0 unhappy .. 4 happy).
_MOOD_WEIGHTS = ((30, 55, 75, 92, 100), (12, 35, 65, 90, 100), (5, 20, 55, 85, 100),
                 (3, 10, 35, 75, 100), (1, 5, 20, 55, 100))
_FIVE = (0, 1, 2, 3, 4)
#: Answer sets pre-rendered per (template, mood, partial); responses pick one at random.
_POOL_BITS = 8


def _answer_pools(rng: random.Random, questions: list[_Question]) -> list[list[list[str]]]:
    """pools[partial][mood] -> 2**_POOL_BITS rendered ``answers`` arrays (inner JSON)."""
    pools: list[list[list[str]]] = []
    for partial in (False, True):
        by_mood = []
        for mood in range(5):
            pool = []
            for _ in range(1 << _POOL_BITS):
                chosen = questions if not partial else [
                    q for q in questions if q.required or rng.random() < 0.3]
                draws = rng.choices(_FIVE, cum_weights=_MOOD_WEIGHTS[mood], k=len(chosen))
                pool.append(",".join(
                    q.by_draw[d] if q.by_draw else q.fragments[rng.randrange(len(q.fragments))]
                    for q, d in zip(chosen, draws)))
            by_mood.append(pool)
        pools.append(by_mood)
    return pools


_HOURS: dict[int, str] = {}
_MINUTE_SECOND = tuple(f"{m:02d}:{sec:02d}Z" for m in range(60) for sec in range(60))


def _iso_fast(ts: int) -> str:
    """`_iso` for whole seconds with the hour prefix cached (hot loop)."""
    hour, rest = divmod(ts, 3600)
    prefix = _HOURS.get(hour)
    if prefix is None:
        prefix = _HOURS[hour] = time.strftime("%Y-%m-%dT%H:", time.gmtime(hour * 3600))
    return prefix + _MINUTE_SECOND[rest]


def _pick(random_: Any, options: tuple[Any, ...] | list[Any]) -> Any:
    """`random.choice` in one float draw (faster; deterministic for a given Random)."""
    return options[int(random_() * len(options))]


@dataclass
class _Part:
    """What one process generated for a contiguous range of tenants: table rows already
    rendered as JSON lines (in tenant order), user changes as rows (sorted once merged)."""

    orgs: list[str]
    teams: list[str]
    users: list[str]
    changes: list[dict[str, Any]]
    assessments: list[str]
    runs: list[str]
    counts: dict[str, int]


@functools.lru_cache(maxsize=4)
def _shared(seed: int) -> tuple[list[tuple[str, list[_Question]]], list[list[list[list[str]]]]]:
    """The form templates and pre-rendered answer pools of a seed (same in every process)."""
    rng = random.Random(seed)
    templates = _templates(rng)
    return templates, [_answer_pools(rng, questions) for _, questions in templates]


def _tenant_rng(seed: int, tenant: int) -> random.Random:
    """Each tenant draws from its own stream, so any split over processes gives the same bytes
    (a str seed is hashed with SHA-512: stable across runs and Python processes)."""
    return random.Random(f"pulse-fixtures/{seed}/{tenant}")


def _tenants(first: int, stop: int, seed: int, hooks_dir: Path) -> _Part:
    """Generate tenants ``first .. stop-1``: their rows, and their webhook files."""
    part = _Part([], [], [], [], [], [], {"responses": 0, "duplicates": 0, "revisions": 0,
                                          "partial": 0})
    changes, counts = part.changes, part.counts
    created = _iso(EPOCH - 30 * 24 * 3600)
    templates, pools = _shared(seed)

    for t in range(first, stop):
        orgs, teams, users, assessments, runs = [], [], [], [], []
        rng = _tenant_rng(seed, t)
        getrandbits, random_ = rng.getrandbits, rng.random
        slug = f"tenant-{t + 1:04d}"
        tenant_id = _uuid(rng)
        orgs.append({"id": tenant_id, "slug": slug, "name": f"Tenant {t + 1} Ltd",
                     "webhook_secret": f"{getrandbits(160):040x}", "created_at": created})
        team_ids = [_uuid(rng) for _ in TEAMS]
        teams += [{"id": i, "tenant_id": tenant_id, "name": n} for i, n in zip(team_ids, TEAMS)]
        tenant_users: list[tuple[str, int]] = []  # (external id, mood 0..4)
        for u in range(USERS_PER_TENANT):
            external = f"u{t + 1:04d}-{u + 1:05d}"
            users.append({
                "id": _uuid(rng), "tenant_id": tenant_id, "external_id": external,
                "email": f"{external}@{slug}.example",
                "full_name": f"{_pick(random_, FIRST)} {_pick(random_, LAST)}",
                "department": _pick(random_, DEPARTMENTS), "role": _pick(random_, ROLES),
                "location": _pick(random_, LOCATIONS), "team_id": _pick(random_, team_ids),
                "created_at": created,
            })
            tenant_users.append((external, int(random_() * 5)))
            if random_() < 0.06:  # attribute changes over the 12 weeks (SCD2)
                when = EPOCH + rng.randrange(1, 12 * WEEK)
                for _ in range(rng.choice((1, 1, 2))):
                    attr = rng.choice(("department", "role", "location", "team_id"))
                    choices = {"department": DEPARTMENTS, "role": ROLES, "location": LOCATIONS,
                               "team_id": team_ids}[attr]
                    changes.append({"tenant_id": tenant_id, "external_id": external,
                                    "effective_at": _iso(when), attr: rng.choice(choices)})
                    when += rng.randrange(3600, 3 * WEEK)
        with open(hooks_dir / f"{slug}.jsonl", "w", encoding="utf-8",
                  buffering=1 << 20) as hook_file:
            write = hook_file.write
            for f, (title, questions) in enumerate(templates):
                form_id = "".join(rng.choice(_FORM_ID_ALPHABET) for _ in range(8))
                assessment_id = _uuid(rng)
                assessments.append({
                    "id": assessment_id, "tenant_id": tenant_id, "typeform_form_id": form_id,
                    "title": title, "questions": [
                        {"id": _uuid(rng), "ref": q.ref, "title": q.title, "question_type": q.type,
                         "position": pos, "required": q.required, "reverse_keyed": q.reverse,
                         "scale_min": q.scale[0] if q.scale else None,
                         "scale_max": q.scale[1] if q.scale else None, "field_id": q.field_id}
                        for pos, q in enumerate(questions)],
                })
                definition = _dumps(ascii_only=True, value={"id": form_id, "title": title, "fields": [
                    {"id": q.field_id, "ref": q.ref, "title": q.title, "type": q.type}
                    for q in questions]})
                body_of = (
                    '{"event_id":"01%024X","event_type":"form_response","form_response":{"answers":[%s'
                    + f'],"definition":{definition.replace("%", "%%")},"form_id":"{form_id}",'
                    '"hidden":{"user_id":"%s"},"landed_at":"%s","submitted_at":"%s","token":"%032x"}}\n'
                )
                full, partial = pools[f]
                for r in range(3):
                    opens = EPOCH + (f * 2 + r * 4) * WEEK // 2
                    runs.append({"id": _uuid(rng), "tenant_id": tenant_id,
                                 "assessment_id": assessment_id, "name": f"{title} #{r + 1}",
                                 "opens_at": _iso(opens), "closes_at": _iso(opens + 2 * WEEK)})
                    respondents = [u for u in tenant_users if random_() < 2 / 3]
                    offsets = sorted(int(random_() ** 2 * (2 * WEEK - 3600)) + 600
                                     for _ in respondents)
                    rng.shuffle(respondents)
                    for (external, mood), offset in zip(respondents, offsets):
                        submitted = opens + offset
                        pool = full
                        if random_() < 0.10:
                            pool = partial
                            counts["partial"] += 1
                        token = getrandbits(128)
                        body = body_of % (getrandbits(96), pool[mood][getrandbits(_POOL_BITS)],
                                          external, _iso_fast(submitted - 30 - getrandbits(9)),
                                          _iso_fast(submitted), token)
                        write(body)
                        roll = random_()
                        if roll < 0.02:  # Typeform retried the delivery: the very same body
                            write(body)
                            counts["duplicates"] += 1
                        elif roll < 0.03:  # the respondent edited the response: same token
                            later = submitted + 3600 + getrandbits(17)
                            write(body_of % (
                                getrandbits(96), pool[min(4, mood + 1)][getrandbits(_POOL_BITS)],
                                external, _iso_fast(later - 60), _iso_fast(later), token))
                            counts["revisions"] += 1
                    counts["responses"] += len(respondents)
        for rows, lines in ((orgs, part.orgs), (teams, part.teams), (users, part.users),
                            (assessments, part.assessments), (runs, part.runs)):
            lines += [_dumps(row) for row in rows]
    return part


def default_processes(scale: int) -> int:
    """Processes `generate` uses by default: one per core (at most 4), two tenants or more
    each; one for small data sets, where starting a process costs more than it saves."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4, scale // 2))


#: Tenants the first range (generated by the calling process) gets beyond an even share: each
#: child starts ~0.1 s late (interpreter, imports, answer pools), ~10 tenants' worth of work.
_HEAD_START = 8


def _ranges(scale: int, processes: int) -> list[tuple[int, int]]:
    """Contiguous tenant ranges, the first one ``_HEAD_START`` larger than the others."""
    if processes == 1:
        return [(0, scale)]
    extra = min(_HEAD_START, scale // processes)
    share = scale - extra
    bounds = [0] + [extra + share * i // processes for i in range(1, processes)] + [scale]
    return [(a, b) for a, b in itertools.pairwise(bounds) if a < b]


class FixtureGenerationError(PulseError):
    """A generation process failed; the output directory was cleared of the data set."""


#: What `generate` writes besides ``webhooks/*.jsonl`` (and clears when it fails).
_TABLE_FILES = ("organizations.json", "teams.json", "users.json", "user_changes.json",
                "assessments.json", "runs.json", "manifest.json")


def _run_part(first: int, stop: int, seed: int, hooks_dir: Path) -> subprocess.Popen[bytes]:
    """Generate a range of tenants in a child process (`python -m` this module: no fork of a
    threaded caller, no re-import of the caller's main module). The child finds this package
    where the parent found it, installed or not."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
    return subprocess.Popen(
        [sys.executable, "-m", "pulse_local.source.fixtures", str(first), str(stop), str(seed),
         str(hooks_dir)], stdout=subprocess.PIPE, env=env)


def _collect(child: subprocess.Popen[bytes]) -> _Part:
    out, _ = child.communicate()
    if child.returncode != 0:
        raise FixtureGenerationError(
            f"a fixture generation process exited with code {child.returncode} (its traceback "
            "is on stderr)")
    return _Part(**pickle.loads(out))


def _clear(out_dir: Path) -> None:
    """Remove a data set's files, so a failed run leaves no mix of old and new."""
    for stale in (out_dir / "webhooks").glob("*.jsonl"):
        stale.unlink()
    for name in _TABLE_FILES:
        (out_dir / name).unlink(missing_ok=True)


def generate(scale: int, seed: int, out_dir: Path, processes: int | None = None
             ) -> dict[str, int]:
    """Write the fixture data set for `scale` tenants into `out_dir`; return the counts.

    Tenants are split over ``processes`` (default `default_processes`); the bytes do not
    depend on it. Existing files of a previous data set in `out_dir` are overwritten; when
    generation fails they are removed (`FixtureGenerationError`): nothing half-written stays.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1 (number of tenants), got {scale}")
    processes = default_processes(scale) if processes is None else processes
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    out_dir = Path(out_dir)
    (out_dir / "webhooks").mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    ranges = _ranges(scale, processes)
    children: list[subprocess.Popen[bytes]] = []
    try:
        for a, b in ranges[1:]:
            children.append(_run_part(a, b, seed, out_dir / "webhooks"))
        # the first range here, while the children do the others
        parts = [_tenants(*ranges[0], seed, out_dir / "webhooks")]
        parts += [_collect(c) for c in children]
    except BaseException:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        _clear(out_dir)
        raise

    merged = _Part([], [], [], [], [], [], dict.fromkeys(parts[0].counts, 0))
    rows = [f.name for f in dataclasses.fields(_Part) if f.name != "counts"]
    for part in parts:
        for name in rows:
            getattr(merged, name).extend(getattr(part, name))
        for key, value in part.counts.items():
            merged.counts[key] += value
    changes = sorted(merged.changes,
                     key=lambda c: (c["effective_at"], c["tenant_id"], c["external_id"]))
    _write_lines(out_dir / "organizations.json", merged.orgs, private=True)
    _write_lines(out_dir / "teams.json", merged.teams)
    _write_lines(out_dir / "users.json", merged.users)
    _write_json(out_dir / "user_changes.json", changes)
    _write_lines(out_dir / "assessments.json", merged.assessments)
    _write_lines(out_dir / "runs.json", merged.runs)
    counts = merged.counts
    counts["deliveries"] = counts["responses"] + counts["duplicates"] + counts["revisions"]
    counts.update(tenants=len(merged.orgs), users=len(merged.users), user_changes=len(changes),
                  assessments=len(merged.assessments), runs=len(merged.runs))
    _write_json(out_dir / "manifest.json", {"generator_version": GENERATOR_VERSION,
                                            "scale": scale, "seed": seed, "counts": counts})
    return counts


_FORM_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


if __name__ == "__main__":  # a child of `generate`: argv = first stop seed hooks_dir
    _first, _stop, _seed, _hooks = sys.argv[1:5]
    _part = _tenants(int(_first), int(_stop), int(_seed), Path(_hooks))
    sys.stdout.buffer.write(pickle.dumps(vars(_part), protocol=pickle.HIGHEST_PROTOCOL))
