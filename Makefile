# Shortcuts; the README's two commands are the scripts themselves (make may not be installed).
.PHONY: demo test unit bench schema
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
unit:
	.venv/bin/python -m pytest tests/unit -q
bench:
	.venv/bin/python bench/plan.py
schema:
	.venv/bin/declserve schema --write schema
