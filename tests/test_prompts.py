"""Prompts: the official LaMP templates (exact strings) and our tagged chat prompt."""

from __future__ import annotations

import pytest

from tagpr_eval.data import LampSample
from tagpr_eval.data.synthetic import generate_task
from tagpr_eval.prompts import TokenCounter, answer_format, build_prompt, lamp_prompt, tagged_messages

L1 = ('For an author who has written the paper with the title "Deep Kernels", which reference is related? '
      'Just answer with [1] or [2] without explanation. [1]: "A" [2]: "B"')


@pytest.mark.parametrize("task,inp,items,expected", [
    ("LaMP-1", L1, [{"title": "Graph nets", "abstract": "x"}, {"title": "Joins", "abstract": "y"}],
     'For an author who has written the paper with the title, and "Graph nets", and "Joins" "Deep Kernels", which '
     'reference is related? Just answer with [1] or [2] without explanation. [1]: "A" [2]: "B"'),
    ("LaMP-2", "Which tag? description: a pilot", [{"description": "a rocket", "tag": "sci-fi"},
                                                    {"description": "a kiss", "tag": "romance"}],
     'the tag for the movie: "a rocket" is "sci-fi" , and the tag for the movie: "a kiss" is "romance" . '
     "Which tag? description: a pilot"),
    ("LaMP-3", "review: fine", [{"text": "great", "score": "5"}, {"text": "bad", "score": 1}],
     '5 is the score for "great" , and 1 is the score for "bad" . review: fine'),
    ("LaMP-4", "Generate a headline for the following article: x", [{"title": "T1", "text": "b1"}],
     '"T1" is the title for "b1" . Generate a headline for the following article: x'),
    ("LaMP-5", "Generate a title for the following abstract of a paper: x",
     [{"title": "T1", "abstract": "a1"}, {"title": "T2", "abstract": "a2"}],
     '"T1" is a title for "a1" , and "T2" is a title for "a2" . Following the given patterns '
     "Generate a title for the following abstract of a paper: x"),
    ("LaMP-6", "Generate a subject for the following email: x", [{"title": "S", "text": "m"}],
     '"S" is the title for "m" . Generate a subject for the following email: x'),
    ("LaMP-7", "Paraphrase the following tweet without any explanation before or after it: x",
     [{"text": "t1"}, {"text": "t2"}],
     '"t1" , and "t2"  are written by a person. Following the given patterns '
     "Paraphrase the following tweet without any explanation before or after it: x"),
])
def test_lamp_templates_exact(task: str, inp: str, items: list, expected: str) -> None:
    assert build_prompt(task, LampSample("1", inp, items), items, style="lamp") == expected


def test_no_items_gives_the_bare_input() -> None:
    assert lamp_prompt("LaMP-2", "description: x", []) == "description: x"
    assert lamp_prompt("LaMP-1", L1, []) == L1


def test_lamp1_without_title_keeps_input() -> None:
    assert lamp_prompt("LaMP-1", 'which? "a" "b" "c"', [{"title": "T"}]) == 'which? "a" "b" "c"'


def test_budget_is_shared_among_items_with_carry_over() -> None:
    inp = "Which tag? description: " + " ".join(["w"] * 8)  # 10 words
    long = " ".join(f"d{i}" for i in range(50))
    items = [{"description": "short one", "tag": "comedy"}, {"description": long, "tag": "sci-fi"}]
    # budget = 40 - min(10, 24) = 30; per item (30 - 1 - 2) // 2 = 13; fixed part 9 words (7 + tag)
    out = lamp_prompt("LaMP-2", inp, items, max_length=40)
    # item 1 keeps its 2 words and saves 13 - 2 - 9 = 2; item 2 gets 13 + 2 - 9 = 6 words
    assert out == ('the tag for the movie: "short one" is "comedy" , and the tag for the movie: '
                   '"d0 d1 d2 d3 d4 d5" is "sci-fi" . ' + inp)


def test_budget_too_small_shrinks_input_share_then_gives_up() -> None:
    items = [{"text": "one two three four five six", "score": "3"}]
    # 512-token default: everything fits
    assert "one two three four five six" in lamp_prompt("LaMP-3", "review: x", items)
    # tiny budget: the item gets truncated; nothing fits at all -> bare input
    # budget 12 - 2 = 10; per item 10 - 1 = 9; fixed part '3 is the score for " " ' = 7 words -> 2 left
    assert lamp_prompt("LaMP-3", "review: x", items, max_length=12) == '3 is the score for "one two" . review: x'
    assert lamp_prompt("LaMP-3", "review: x", items, max_length=10) == '3 is the score for "" . review: x'
    assert lamp_prompt("LaMP-3", "review: x", items, max_length=3) == "review: x"


def test_token_counter_words_keeps_fitting_text_verbatim() -> None:
    tc = TokenCounter()
    assert tc.truncate("a\n b", 5) == "a\n b"
    assert tc.used("a\n b c", 2) == ("a b", 2)
    with pytest.raises(OverflowError):
        tc.truncate("a", -1)


def test_hf_tokenizer_counts_model_tokens() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"[UNK]": 0, "the": 1, "tag": 2, "rocket": 3, "a": 4, "flies": 5, "far": 6}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    tc = TokenCounter(hf)
    assert tc.count("a rocket flies far") == 4
    assert tc.used("a rocket flies far", 2) == ("a rocket", 2)


def test_tagged_messages_structure() -> None:
    from tagpr_rewards.tags import load_schema

    st = generate_task("LaMP-2", n_users=1, questions_per_user=1, profile_size=3)
    s = st.data.samples[0]
    msgs = build_prompt("LaMP-2", s, s.profile, style="tagged")
    assert isinstance(msgs, list) and [m["role"] for m in msgs] == ["system", "user"]
    sys_txt, user_txt = msgs[0]["content"], msgs[1]["content"]
    schema = load_schema("personalization-9")
    for tag, meaning in schema.tags:
        assert f"<{tag}>: {meaning}" in sys_txt
    assert "Required tags: understand-task, recall-history, infer-preference, answer." in sys_txt
    assert "Allowed order" in sys_txt and "<answer>...</answer>" in sys_txt
    assert "exactly one tag from this list: sci-fi, based on a book" in sys_txt
    for i, it in enumerate(s.profile, 1):
        assert f"[{i}] ({it['date']}) description: {it['description']} | tag: {it['tag']}" in user_txt
    assert user_txt.index("Question:\n" + s.input) > user_txt.index("[3]")


def test_tagged_other_schema_and_no_items() -> None:
    m = tagged_messages("LaMP-7", "Paraphrase the following tweet: hi", [], schema="think-answer")
    assert "<think>:" in m[0]["content"] and "Write nothing outside the tags." in m[0]["content"]
    assert "(none available)" in m[1]["content"]


def test_tagged_truncates_long_items_to_budget() -> None:
    long = " ".join(["w"] * 1000)
    m = tagged_messages("LaMP-4", "Generate a headline for the following article: x",
                        [{"title": "T", "text": long}, {"title": "U", "text": long}], max_length=100)
    user = m[1]["content"]
    assert user.count(" w") < 110


def test_answer_format_and_unknown_style() -> None:
    assert answer_format("LaMP-1") == "exactly [1] or [2]"
    assert answer_format("LaMP-5").startswith("only the title")
    with pytest.raises(KeyError, match="did you mean 'tagged'"):
        build_prompt("LaMP-2", "x", [], style="taged")
