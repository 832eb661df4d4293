"""Model cards from the lab's records: what a PPO run's card says about length and hacking flags."""

from __future__ import annotations

from tuilab.diagnostics.flags import FLAG_HELP
from tuilab.jobs.model_card import write_model_card
from tuilab.records import Sample
from tuilab.store import runs
from tuilab.store.samples import write_samples

PEFT_TEMPLATE = "# Model Card for Model ID\n\n<!-- Provide a quick summary of what the model is/does. -->\n"


def test_ppo_card_counts_flags_and_length_and_replaces_peft_templates(db, tmp_path):
    flag = next(iter(FLAG_HELP))
    rid = runs.create_run(db, "ppo", {"kl_coef": 0.05, "reward_run": "rm-1"}, name="β 0.05", parents=["rm-1"])
    runs.set_run_status(db, rid, "running")
    for step in (1, 2):
        write_samples(db, rid, step, [
            Sample(prompt="q", response="a" * (10 * step + i), score=0.5 * step + 0.1 * i, length=10 * step + i,
                   flags=[flag] if step == 2 and i < 3 else [])
            for i in range(4)])
    runs.write_metrics(db, rid, [(1, "response/length_mean", 11.5), (2, "response/length_mean", 21.5),
                                 (2, "objective/scores", 1.15)])
    runs.set_run_status(db, rid, "completed", final_metrics={"objective/scores": 1.15, "steps": 2})
    folder = tmp_path / "run"
    (folder / "policy").mkdir(parents=True)
    (folder / "README.md").write_text(PEFT_TEMPLATE)
    (folder / "policy" / "README.md").write_text(PEFT_TEMPLATE)
    (folder / "notes").mkdir()
    (folder / "notes" / "README.md").write_text("my own notes")  # not a PEFT template: left alone

    write_model_card(db, rid, folder, base_model="models/smollm2-135m-instruct")
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\nbase_model: models/smollm2-135m-instruct\n")
    assert "# β 0.05 — PPO policy trained in tuilab" in card and "`rm-1`" in card
    assert f"- `{flag}` × 3: {FLAG_HELP[flag]}" in card and "Among 8 samples (0 marked hacked by hand)" in card
    assert "Pearson correlation of reward score and response length over 8 samples: 0.9" in card
    assert "`response/length_mean`: 11.5 at step 1 → 21.5 at step 2." in card
    assert "| `objective/scores` | 1.15 |" in card
    assert (folder / "policy" / "README.md").read_text() == card
    assert (folder / "notes" / "README.md").read_text() == "my own notes"
