"""Print the held-out chosen-over-rejected log-probability margin of a DPO run, before and after
training. Run: python examples/preference/margin.py RUN_DIR

From the run's manifest (TRL's eval metrics on data.eval_datasets after training): after =
mean(log p(chosen) - log p(rejected)) under the trained policy; DPO's reward margin is
beta x (that margin - the reference's), so before = after - eval_rewards/margins / beta.
"""

import json
import sys
from pathlib import Path


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/dpo-demo")
    manifest = json.loads((run / "manifest.json").read_text())
    m, beta = manifest["metrics"], manifest["config"]["stage"]["beta"]
    after = m["eval_logps/chosen"] - m["eval_logps/rejected"]
    before = after - m["eval_rewards/margins"] / beta
    print("held-out pairs: mean log p(chosen) - log p(rejected)")
    print(f"  before (base model): {before:8.2f}")
    print(f"  after DPO:           {after:8.2f}   (change {after - before:+.2f})")
    print(f"  reward accuracy after: {m['eval_rewards/accuracies']:.2f}")


if __name__ == "__main__":
    main()
