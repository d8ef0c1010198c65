"""LaMP label lists, in the official order (index = class id).

>>> LAMP2_MOVIE_TAGS[0], len(LAMP2_MOVIE_TAGS), LAMP1_LABELS
('sci-fi', 15, ('[1]', '[2]'))
"""

from __future__ import annotations

__all__ = ["LAMP1_LABELS", "LAMP2_MOVIE_TAGS", "LAMP2_NEWS_CATEGORIES"]

#: LaMP-1 citation identification: the answer names the reference by its bracketed number.
LAMP1_LABELS: tuple[str, ...] = ("[1]", "[2]")

#: LaMP-2 personalised movie tagging (the current LaMP-2, since March 2024).
LAMP2_MOVIE_TAGS: tuple[str, ...] = (
    "sci-fi",
    "based on a book",
    "comedy",
    "action",
    "twist ending",
    "dystopia",
    "dark comedy",
    "classic",
    "psychology",
    "fantasy",
    "romance",
    "thought-provoking",
    "social commentary",
    "violence",
    "true story",
)

#: Legacy LaMP-2 personalised news categorisation (replaced in March 2024; for old papers).
LAMP2_NEWS_CATEGORIES: tuple[str, ...] = (
    "food & drink",
    "sports",
    "education",
    "parents",
    "religion",
    "travel",
    "business",
    "crime",
    "science & technology",
    "culture & arts",
    "entertainment",
    "politics",
    "women",
    "style & beauty",
    "healthy living",
)
