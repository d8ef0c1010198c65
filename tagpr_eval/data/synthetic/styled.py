"""LaMP-4..7 (headlines, paper titles, email subjects, tweets): content from the input, the
user's style (prefix, casing, length, signature words) decides the surface form, and the
user's earlier outputs show it (our design, see docs/data.md).
"""

from __future__ import annotations

import random
import re
from typing import Any

from tagpr_eval.data.lamp_files import LampSample
from tagpr_eval.data.synthetic.core import INSTRUCTIONS, Explanation, SyntheticUser, _query

# LaMP-4..7 content pieces.
_ENTITIES = ["City Council", "Local Schools", "Tech Giant", "Star Striker", "Health Officials", "Central Bank",
             "Climate Scientists", "Farmers", "Transit Authority", "Museum", "Startup", "Senate"]
_ACTIONS = ["approves", "rejects", "unveils", "delays", "expands", "cuts", "announces", "reviews"]
_OBJECTS = ["new budget", "housing plan", "vaccine program", "stadium deal", "rate hike", "bike lanes",
            "water rules", "school lunches", "data center", "art exhibit", "tax break", "rail line"]
_PLACES = ["Boston", "Denver", "Austin", "Seattle", "Atlanta", "Chicago", "Phoenix", "Portland"]
_METHODS = ["contrastive pretraining", "sparse attention", "graph rewiring", "curriculum learning",
            "low-rank adaptation", "diffusion sampling", "knowledge distillation", "active learning"]
_PROBLEMS = ["document ranking", "protein design", "speech translation", "code generation",
             "traffic forecasting", "medical imaging", "fraud detection", "robot navigation"]
_EMAIL_TOPICS = ["budget review", "project timeline", "client meeting", "server outage", "hiring plan",
                 "quarterly report", "contract renewal", "team offsite", "product launch", "security audit"]
_EMAIL_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_TWEET_SUBJ = ["coffee", "the game", "this weather", "my new phone", "the concert", "monday mornings",
               "the traffic", "pizza night", "the season finale", "my cat", "the gym", "the new album"]
_TWEET_FEEL = ["is amazing", "is annoying", "made my day", "is overrated", "is the best thing ever",
               "is driving me crazy", "was worth it", "needs to stop"]
_EMPHASIS = {"is amazing": "is so amazing", "is annoying": "is so annoying", "made my day": "totally made my day",
             "is overrated": "is so overrated", "is the best thing ever": "is literally the best thing ever",
             "is driving me crazy": "is really driving me crazy", "was worth it": "was so worth it",
             "needs to stop": "really needs to stop"}

# Styles (LaMP-4..7): each user picks one value per dimension.
_STYLE_CHOICES: dict[str, dict[str, list[str]]] = {
    "LaMP-4": {"prefix": ["", "BREAKING:", "Opinion:", "Watch:"], "casing": ["title", "sentence", "lower"],
               "length": ["short", "long"], "signature": ["", "experts say", "here's why", "report"]},
    "LaMP-5": {"form": ["plain", "towards", "colon", "question"], "signature": ["", "Efficient", "Scalable", "Robust"],
               "length": ["short", "long"]},
    "LaMP-6": {"prefix": ["", "Re:", "FYI:", "[team]"], "casing": ["sentence", "lower"],
               "signature": ["", "quick question", "urgent", "update"], "length": ["short", "long"]},
    "LaMP-7": {"casing": ["keep", "lower"], "slang": ["none", "abbrev"], "signoff": ["", "lol", "#blessed", "smh"],
               "emphasis": ["none", "so"]},
}


#: the style dimensions and their values per task
STYLE_CHOICES = _STYLE_CHOICES


def _title_case(s: str) -> str:
    return " ".join(w[:1].upper() + w[1:] if w.lower() not in {"a", "the", "in", "of", "for", "on", "to", "with"} or i == 0
                    else w for i, w in enumerate(s.split()))


def _casing(s: str, how: str) -> str:
    if how == "title":
        return _title_case(s)
    if how == "lower":
        return s.lower()
    if how == "sentence":
        return s[:1].upper() + s[1:]
    return s


def _content(task: str, rng: random.Random) -> tuple[str, str]:
    """(core content, full input text) for a generation task."""
    if task == "LaMP-4":
        core = f"{rng.choice(_ENTITIES)} {rng.choice(_ACTIONS)} {rng.choice(_OBJECTS)} in {rng.choice(_PLACES)}"
        body = f"{core}. Officials said the decision followed months of debate. " + rng.choice(
            ["Residents reacted with mixed feelings.", "Critics called it rushed.", "Supporters welcomed the move."])
        return core, body
    if task == "LaMP-5":
        core = f"{rng.choice(_METHODS)} for {rng.choice(_PROBLEMS)}"
        body = (f"We propose {core}. Existing approaches struggle with scale and noise. "
                f"Experiments on three benchmarks show consistent gains over strong baselines.")
        return core, body
    if task == "LaMP-6":
        core = f"{rng.choice(_EMAIL_TOPICS)} on {rng.choice(_EMAIL_DAYS)}"
        body = (f"Hi all, writing about the {core}. Please send me your comments before then. "
                f"Thanks, {rng.choice(['Ann', 'Bob', 'Carla', 'Dev', 'Eli'])}")
        return core, body
    if task == "LaMP-7":
        core = f"{rng.choice(_TWEET_SUBJ)} {rng.choice(_TWEET_FEEL)}"
        return core, f"Honestly, {core}."
    raise ValueError(task)


def _core_from_input(task: str, text: str) -> str:
    query = _query(task, text)
    if task == "LaMP-4":
        return query.split(". ", 1)[0]
    if task == "LaMP-5":
        m = re.match(r"We propose (.+?)\. ", query)
        return m.group(1) if m else query.split(". ", 1)[0]
    if task == "LaMP-6":
        m = re.search(r"writing about the (.+?)\. ", query)
        return m.group(1) if m else query.split(". ", 1)[0]
    if task == "LaMP-7":
        return query.removeprefix("Honestly, ").rstrip(".")
    raise ValueError(task)


_ABBREV = {"you": "u", "to": "2", "great": "gr8", "the": "da", "is": "iz", "my": "ma", "this": "dis"}


def _styled(task: str, core: str, style: dict[str, str], drop: str | None = None) -> str:
    st = {k: ("" if k == drop else v) for k, v in style.items()}
    if task == "LaMP-4":
        words = core.split()
        if st.get("length") == "short" and " in " in core:
            words = core.rsplit(" in ", 1)[0].split()
        s = _casing(" ".join(words), st.get("casing", "sentence"))
        if st.get("signature"):
            s = f"{s}, {st['signature']}" if st["signature"] != "report" else f"{s} (report)"
        if st.get("prefix"):
            s = f"{st['prefix']} {s}"
        return s
    if task == "LaMP-5":
        method, problem = core.split(" for ", 1)
        method_t = _title_case(method)
        sig = f"{st['signature']} " if st.get("signature") else ""
        form = st.get("form", "plain")
        if form == "towards":
            s = f"Towards {sig}{_title_case(problem)} with {method_t}"
        elif form == "colon":
            acro = "".join(w[0].upper() for w in method.replace("-", " ").split())
            s = f"{acro}: {sig}{method_t} for {_title_case(problem)}"
        elif form == "question":
            s = f"Can {sig}{method_t} Improve {_title_case(problem)}?"
        else:
            s = f"{sig}{method_t} for {_title_case(problem)}"
        if st.get("length") == "long":
            s += " and Beyond" if form != "question" else ""
        return s.strip()
    if task == "LaMP-6":
        s = core if st.get("length") == "long" else core.rsplit(" on ", 1)[0]
        if st.get("signature"):
            s = f"{st['signature']}: {s}"
        s = _casing(s, st.get("casing", "sentence"))
        if st.get("prefix"):
            s = f"{st['prefix']} {s}"
        return s
    if task == "LaMP-7":
        s = core
        if st.get("emphasis") == "so":
            for plain, strong in _EMPHASIS.items():
                if s.endswith(plain):
                    s = s[: -len(plain)] + strong
                    break
        if st.get("slang") == "abbrev":
            s = " ".join(_ABBREV.get(w, w) for w in s.split())
        if st.get("casing") == "lower":
            s = s.lower()
        else:
            s = s[:1].upper() + s[1:]
        if st.get("signoff"):
            s = f"{s} {st['signoff']}"
        return s
    raise ValueError(task)


class Styled:
    """The LaMP-4..7 family (see :class:`~tagpr_eval.data.synthetic.core.Family`)."""

    tasks: tuple[str, ...] = ("LaMP-4", "LaMP-5", "LaMP-6", "LaMP-7")

    def catalog(self, task: str, rng: random.Random, per_topic: int) -> list[tuple[str, str]]:
        """(core content, input text) pairs."""
        return [_content(task, rng) for _ in range(per_topic * 8)]

    def make_user(self, task: str, rng: random.Random, uid: str) -> SyntheticUser:
        style = {k: rng.choice(v) for k, v in _STYLE_CHOICES[task].items()}
        return SyntheticUser(uid, task, style=style)

    def fill_item(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any, item: dict[str, Any],
                  noise: float) -> None:
        core, body = rng.choice(cat)
        drop = rng.choice(list(user.style)) if rng.random() < noise else None
        out = _styled(task, core, user.style, drop)
        if task == "LaMP-7":
            item["text"] = out
        elif task == "LaMP-5":
            item["title"], item["abstract"] = out, body
        else:
            item["title"], item["text"] = out, body

    def make_input(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any) -> str:
        core, body = rng.choice(cat)
        return INSTRUCTIONS[task].format(text=body)

    def noisy_answer(self, task: str, rng: random.Random, user: SyntheticUser, sample: LampSample,
                     answer: str) -> str:
        drop = rng.choice(list(user.style))
        return _styled(task, _core_from_input(task, sample.input), user.style, drop)

    def topic(self, task: str, text: str) -> str | None:
        return None

    def oracle(self, user: SyntheticUser, sample: LampSample) -> str:
        return _styled(user.task, _core_from_input(user.task, sample.input), user.style)

    def explain(self, user: SyntheticUser, sample: LampSample, answer: str) -> Explanation:
        core = _core_from_input(user.task, sample.input)
        return Explanation(user.task, None, core, list(range(len(sample.profile))), user.rule(), False, answer)

    def rule(self, user: SyntheticUser, topic: str | None) -> str:
        return "writes with " + ", ".join(f"{k}={v!r}" for k, v in sorted(user.style.items()))
