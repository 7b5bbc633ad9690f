"""Build a tiny random LLaMA and a byte-level BPE tokenizer, locally, with no download.

Tests, the demo and the benchmarks use it so the whole pipeline runs on a CPU in seconds. The
tokenizer is trained on the corpus itself; byte-level BPE means any text (Thai, emoji) round-trips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from modeling.prompting import SPECIAL_TOKENS

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "UNK",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "corpus_texts",
    "pretrain_tiny_model",
]

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"


def build_tiny_tokenizer(corpus: Iterable[str], vocab_size: int = 1024):  # type: ignore[no-untyped-def]
    """Train a byte-level BPE on the corpus and wrap it as a transformers fast tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNK, BOS, EOS, PAD],
        # Every byte is in the vocabulary, so nothing ever maps to <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    # The role tags are single ids but not "special": decode(skip_special_tokens=True) keeps them,
    # which the generation parser relies on.
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in SPECIAL_TOKENS])
    bos_id = tok.token_to_id(BOS)
    # Like the LLaMA tokenizer: BOS is prepended, EOS is left to the caller.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=512,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    return fast


def build_tiny_model(
    output_dir: str | Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    seed: int = 0,
) -> Path:
    """Write a random `LlamaForCausalLM` and its tokenizer to `output_dir`; returns the path."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = [t for t in corpus if t]
    if not texts:
        raise ValueError("the corpus is empty; the tokenizer needs some text to learn from")
    tokenizer = build_tiny_tokenizer(texts, vocab_size=vocab_size)
    tokenizer.model_max_length = max_position_embeddings
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 8 // 3 // 8 * 8 or 8,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def pretrain_tiny_model(
    model_dir: str | Path,
    corpus: Iterable[str],
    *,
    steps: int,
    batch_size: int = 8,
    learning_rate: float = 2e-3,
    max_length: int = 256,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Full-parameter causal-LM training of the model in `model_dir` on `corpus`, saved in place.

    A random model writes byte soup, so a demo built on it would have nothing to rate. A few
    hundred steps on the corpus stand in for the pretraining a real base model has had; LoRA
    fine-tuning then starts from a model that already knows the corpus's words. Returns the
    loss of every step (the caller can check that it went down).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if steps < 1:
        raise ValueError("steps must be >= 1")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    encoded = [
        tokenizer(t, truncation=True, max_length=max_length - 1)["input_ids"]
        + [tokenizer.eos_token_id]
        for t in corpus
        if t
    ]
    if not encoded:
        raise ValueError("the corpus is empty")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    losses: list[float] = []
    model.train()
    for step in range(1, steps + 1):
        picks = torch.randint(len(encoded), (batch_size,), generator=generator).tolist()
        rows = [encoded[i] for i in picks]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        labels = torch.full((len(rows), width), -100)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row)
            labels[r, : len(row)] = torch.tensor(row)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    model.save_pretrained(model_dir)
    return losses


def corpus_texts(path: str | Path) -> list[str]:
    """Training texts (prompt + completion) from a prepared `train.jsonl`, for the tokenizer."""
    from modeling.prompting import build_training_text
    from modeling.training import load_records

    return [build_training_text(r["background"], r["turns"]) for r in load_records(path)]
