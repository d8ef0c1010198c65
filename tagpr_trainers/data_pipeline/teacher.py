"""Teachers write reasoning chains (untagged steps + a final answer) for LaMP samples.

* :class:`TemplateTeacher` — offline, for the synthetic data of ``tagpr_eval.data.synthetic``.
  It reads the prompt's retrieved profile items the way a careful human would (find the items
  about the query's topic, take their majority label; fall back to the history's majority), so
  it is right on most samples but **not all** (label noise, the right items not retrieved, the
  fallback): an imperfect teacher, by our design, so RL has measurable room above SFT. It
  uses the generator's introspection (:func:`~tagpr_eval.data.synthetic.sample_topic`,
  :func:`~tagpr_eval.data.synthetic.explain`) to name the topic in words, and labels its own
  steps with the tag it meant (a hint the taggers are measured against).
* :class:`LLMTeacher` — any ``tagpr_eval`` generation backend (``openai``, ``vllm``, ``hf``)
  answers the LaMP prompt with ``Step: ...`` lines and an ``Answer: ...`` line
  (:func:`parse_llm_chain`).

>>> from tagpr_eval.data.synthetic import generate_task
>>> st = generate_task("LaMP-2", n_users=2, questions_per_user=1, profile_size=8, seed=0)
>>> s = st.data.samples[0]
>>> chain = TemplateTeacher(st.users).write([TeacherJob("LaMP-2", s, s.profile[:4])])[0]
>>> chain.answer in [it["tag"] for it in s.profile] or chain.answer == st.users[s.user_id].favourite_tag
True
>>> [step.hint for step in chain.steps][:2]
['understand-task', 'recall-history']
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LLM_TEACHER_INSTRUCTION",
    "Chain",
    "DryRunTeacher",
    "LLMTeacher",
    "Step",
    "TeacherJob",
    "TemplateTeacher",
    "load_synthetic_users",
    "parse_llm_chain",
]

logger = logging.getLogger("tagpr_trainers.data_pipeline")


@dataclass
class Step:
    """One reasoning step: its text, the tag a tagger gave it, and the teacher's own hint."""

    text: str
    tag: str | None = None
    hint: str | None = None


@dataclass
class TeacherJob:
    """What a teacher sees: the task, the LaMP sample and the profile items shown in the prompt."""

    task: str
    sample: Any
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Chain:
    """A teacher's reasoning for one sample (``steps`` untagged until a tagger runs)."""

    sample_id: str
    task: str
    steps: list[Step]
    answer: str
    teacher: str
    raw: str | None = None


# ---------------------------------------------------------------------------------------------
# template teacher (synthetic data)


def load_synthetic_users(path: str | Path) -> dict[str, Any]:
    """Read ``{split}_users.json`` written by ``tagpr_eval.data.synthetic.write_synthetic``."""
    import json

    from tagpr_eval.data.synthetic import SyntheticUser

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return {u["user_id"]: SyntheticUser(**u) for u in data["users"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{p}: not a synthetic users file ({e}); write one with "
                         "tagpr_eval.data.synthetic.write_synthetic") from e


def _quote(tags: Sequence[str]) -> str:
    return ", ".join(f'"{t}"' for t in tags)


class TemplateTeacher:
    """Offline teacher for synthetic LaMP-2 and LaMP-3 data (a good but imperfect heuristic).

    Args:
        users: ``{user_id: SyntheticUser}`` (``SyntheticTask.users`` or
            :func:`load_synthetic_users`); used to name the query's topic/sentiment in words,
            never to read the answer.
    """

    name = "template"
    TASKS = ("LaMP-2", "LaMP-3")

    CHAINS = ("listing", "prose")

    def __init__(self, users: Mapping[str, Any], chain: str = "listing") -> None:
        if chain not in self.CHAINS:
            raise ValueError(f"unknown chain style {chain!r}; choose one of {', '.join(self.CHAINS)}")
        self.users = dict(users)
        self.chain = chain

    def write(self, jobs: Sequence[TeacherJob]) -> list[Chain]:
        """One chain per job."""
        from tagpr_rewards.metrics.lamp import get_task

        out = []
        for job in jobs:
            task = get_task(job.task).name
            if task == "LaMP-2":
                steps, answer = self._lamp2_listing(job) if self.chain == "listing" else self._lamp2(job)
            elif task == "LaMP-3":
                steps, answer = self._lamp3(job)
            else:
                raise ValueError(f"the template teacher covers {', '.join(self.TASKS)}, not {task}; "
                                 "use data.teacher.kind=llm for other tasks")
            out.append(Chain(str(job.sample.id), task, steps, answer, self.name))
        return out


    def _lamp2_listing(self, job: TeacherJob) -> tuple[list[Step], str]:
        """Our chain for small models (``chain="listing"``): every retrieved item as
        ``topic -> "tag"`` in prompt order, then the query's topic, the same-topic tags, the vote.

        Writing each item's topic next to its tag turns "find the history items about this
        topic and read their tags" into short local steps a tiny model can learn to copy from its
        context (measured: the prose chain's recalled tags appeared in the prompt 19% of the
        time; see docs/recipe.md). The words are the teacher's; the model sees only the prompt.
        """
        from tagpr_eval.data.synthetic import sample_topic

        topic = sample_topic(job.sample, "LaMP-2") or "unknown"
        listed = [(sample_topic(str(it.get("description", "")), "LaMP-2") or "unknown", str(it["tag"]))
                  for it in job.items]
        same = [tag for t, tag in listed if t == topic]
        steps = [
            Step("The task asks for one tag from the list for this movie.", hint="understand-task"),
            Step("The user's history items: " + "; ".join(f'{t} -> "{tag}"' for t, tag in listed) + "."
                 if listed else "The user's history items: none.", hint="recall-history"),
            Step(f"The query movie is about {topic}.", hint="analyze-query"),
        ]
        if same:
            answer = Counter(same).most_common(1)[0][0]
            steps.append(Step(f"The user's habit for {topic}: {_quote(same)}.", hint="extract-preference"))
        else:
            all_tags = [tag for _, tag in listed]
            answer = Counter(all_tags).most_common(1)[0][0] if all_tags else "classic"
            steps.append(Step(f"The user's habit for {topic}: none; most used: \"{answer}\".",
                              hint="extract-preference"))
        steps.append(Step(f"So this user would want \"{answer}\".", hint="infer-preference"))
        return steps, answer

    def _lamp2(self, job: TeacherJob) -> tuple[list[Step], str]:
        from tagpr_eval.data.synthetic import sample_topic

        topic = sample_topic(job.sample, "LaMP-2") or "unknown"
        items = job.items
        same = [it["tag"] for it in items if sample_topic(str(it.get("description", "")), "LaMP-2") == topic]
        steps = [
            Step("The task asks for one tag from the list for this movie; answer with the tag name only.",
                 hint="understand-task"),
            Step(f"The query movie is a {topic} story.", hint="analyze-query"),
        ]
        if same:
            steps.append(Step(f"In the user's history, {topic} movies were tagged {_quote(same)}.",
                              hint="recall-history"))
            answer = Counter(same).most_common(1)[0][0]
            steps.append(Step(f"The user's preference for {topic} movies is \"{answer}\".",
                              hint="extract-preference"))
        else:
            all_tags = [it["tag"] for it in items]
            steps.append(Step(f"No item in the user's history is a {topic} movie; the history tags are "
                              f"{_quote(all_tags)}.", hint="recall-history"))
            answer = Counter(all_tags).most_common(1)[0][0] if all_tags else "classic"
            steps.append(Step(f"The user's habit is to use \"{answer}\" most.", hint="extract-preference"))
        steps.append(Step(f"So this user would want the tag \"{answer}\" for this movie.", hint="infer-preference"))
        return steps, answer

    def _lamp3(self, job: TeacherJob) -> tuple[list[Step], str]:
        from tagpr_eval.data.synthetic import explain, sample_topic

        user = self.users.get(str(job.sample.user_id))
        if user is None:
            raise ValueError(f"sample {job.sample.id}: user {job.sample.user_id!r} is not in the synthetic "
                             "users file; the template teacher needs the generator's users")
        level = int(explain(user, job.sample).content)
        cat = sample_topic(job.sample, "LaMP-3") or "unknown"
        words = {-2: "very negative", -1: "negative", 0: "mixed", 1: "positive", 2: "very positive"}
        same = [int(float(it["score"])) for it in job.items
                if sample_topic(str(it.get("text", "")), "LaMP-3") == cat]
        pool = same or [int(float(it["score"])) for it in job.items]
        offset = (sum(pool) / len(pool) - 3.0) if pool else 0.0
        pred = max(1, min(5, round(3 + level + offset)))
        steps = [
            Step("The task asks for a score from 1 to 5 for this review; answer with the number only.",
                 hint="understand-task"),
            Step(f"The query review is {words.get(level, 'mixed')} about a {cat} product.", hint="analyze-query"),
            Step(f"In the user's history, {'these ' + cat if same else 'all'} reviews were rated "
                 f"{', '.join(map(str, pool)) or 'nothing'}.", hint="recall-history"),
            Step(f"The user's ratings sit {offset:+.1f} from a neutral 3.", hint="extract-preference"),
            Step(f"So this user would give it {pred}.", hint="infer-preference"),
        ]
        return steps, str(pred)


# ---------------------------------------------------------------------------------------------
# LLM teacher

LLM_TEACHER_INSTRUCTION = (
    "Before answering, reason about this user: what the task asks, what the user's history shows, "
    "what the user prefers, and what they would want here. Write each reasoning step on its own line "
    "starting with 'Step:'. End with one line 'Answer: <answer>' in exactly the format the task asks for."
)

_STEP_RE = re.compile(r"^\s*(?:step\s*\d*\s*[:.)-]|\d+\s*[.)]|[-*•])\s*", re.IGNORECASE)
_ANSWER_RE = re.compile(r"^\s*(?:final\s+)?answer\s*[:：]\s*(.*)$", re.IGNORECASE)


def parse_llm_chain(text: str) -> tuple[list[str], str | None]:
    """Split an LLM teacher's output into step texts and the answer (``None`` if missing).

    >>> parse_llm_chain("Step: likes space.\\nStep 2: so sci-fi.\\nAnswer: sci-fi")
    (['likes space.', 'so sci-fi.'], 'sci-fi')
    >>> parse_llm_chain("no structure")
    (['no structure'], None)
    """
    steps: list[str] = []
    answer: str | None = None
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        m = _ANSWER_RE.match(line)
        if m:
            answer = m.group(1).strip().strip('"').strip()
            continue
        if answer is not None:  # text after the answer line is ignored
            continue
        step = _STEP_RE.sub("", line, count=1).strip()
        if step:
            steps.append(step)
    return steps, answer


class LLMTeacher:
    """A teacher through any ``tagpr_eval`` backend (``openai``, ``vllm``, ``hf``, ``dummy``).

    The prompt is the official LaMP prompt (``tagpr_eval.prompts.build_prompt(style="lamp")``)
    plus :data:`LLM_TEACHER_INSTRUCTION`. Chains without an answer line get answer ``""``
    (the task filter then drops them).

    >>> t = LLMTeacher("dummy")
    >>> from tagpr_eval.data.synthetic import generate_task
    >>> s = generate_task("LaMP-2", n_users=1, questions_per_user=1, profile_size=3).data.samples[0]
    >>> t.write([TeacherJob("LaMP-2", s, s.profile)])[0].answer
    ''
    """

    name = "llm"

    def __init__(self, backend: str, model_args: Mapping[str, Any] | None = None, max_new_tokens: int = 512,
                 temperature: float = 0.0, batch_size: int = 16, backend_obj: Any = None) -> None:
        from tagpr_eval.backends import get_backend

        self.backend_name = backend
        self.backend = backend_obj if backend_obj is not None else get_backend(backend, **dict(model_args or {}))
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.batch_size = batch_size

    @staticmethod
    def prompt(job: TeacherJob) -> list[dict[str, str]]:
        """The chat messages sent to the teacher model."""
        from tagpr_eval.prompts import build_prompt

        base = build_prompt(job.task, job.sample, job.items, style="lamp")
        text = base if isinstance(base, str) else "\n".join(str(m.get("content", "")) for m in base)
        return [{"role": "user", "content": f"{text}\n\n{LLM_TEACHER_INSTRUCTION}"}]

    def write(self, jobs: Sequence[TeacherJob]) -> list[Chain]:
        from tagpr_eval.backends import Request
        from tagpr_eval.config import GenerationConfig

        gen = GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                               do_sample=self.temperature > 0)
        out: list[Chain] = []
        for b in range(0, len(jobs), self.batch_size):
            batch = jobs[b: b + self.batch_size]
            reqs = [Request(prompt=self.prompt(j), id=str(j.sample.id), task=j.task, sample=j.sample, items=j.items)
                    for j in batch]
            texts = self.backend.generate(reqs, gen)
            for job, text in zip(batch, texts):
                steps, answer = parse_llm_chain(text)
                out.append(Chain(str(job.sample.id), job.task, [Step(s) for s in steps], answer or "",
                                 f"llm:{self.backend_name}", raw=text))
        return out


class DryRunTeacher:
    """Stands in for a remote/GPU teacher in ``--dry-run`` on a machine that cannot reach it:
    builds the real teacher prompt for every job (so prompt building is checked) and returns a
    fixed two-step chain with the gold answer, so the later stages get one batch to check."""

    name = "dry-run"

    def __init__(self, label: str = "llm") -> None:
        self.label = label

    def write(self, jobs: Sequence[TeacherJob]) -> list[Chain]:
        out = []
        for job in jobs:
            LLMTeacher.prompt(job)
            steps = [Step("The task asks for the answer in the task's format.", hint="understand-task"),
                     Step("The user's history shows what they prefer.", hint="recall-history"),
                     Step("So this user would want this answer.", hint="infer-preference")]
            out.append(Chain(str(job.sample.id), job.task, steps, str(job.sample.output or ""), f"dry-run:{self.label}"))
        return out
