"""The report's sections; importing a module registers its section.

A new section is one new module here plus its name in :data:`PAGE_ORDER`.
"""

from importlib import import_module

#: Section modules in the order their sections appear on the page.
PAGE_ORDER = (
    "leaderboard",
    "heatmap",
    "across",
    "cost",
    "search",
    "curves",
    "per_class",
    "predictions",
    "rollout",
    "failures",
    "reproduce",
)

for _name in PAGE_ORDER:
    import_module(f"{__name__}.{_name}")
