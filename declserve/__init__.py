"""declserve: plan and apply model servings from YAML specs kept in Git."""

__version__ = "0.1.0"
