"""IBM baselines beside likvid's model: train before 2013-07-01, score each week's new invoices of 2013H2
with likvid's LightGBM, a logistic regression and the customer's late share (in-process, no registry).

The README's headline figure comes from the product's own commands instead: ``weekly_auc.py`` runs
``likvid train --as-of 2013-06-30`` and ``likvid score --as-of`` at each week's end (the invoices still
open then; this script also scores those paid within their week).

Run: .venv/bin/python examples/ibm-ar/prepare.py ../shared/data/ibm-ar-late-payment OUT [--dispute-at-issue]
then: .venv/bin/python examples/ibm-ar/evaluate.py OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

from features.load import validate
from training.evaluate import weekly_new_invoices

MAPPING = Path(__file__).with_name("mapping.yaml")

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    company = validate(sys.argv[1], MAPPING).company
    table, scored = weekly_new_invoices(company, "2013-06-30", "2013-07-01", "2013-12-31")
    print(f"{len(scored)} invoices issued in 2013H2, scored in the week they were issued\n")
    print(table.round(4).to_string())
