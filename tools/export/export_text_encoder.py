#!/usr/bin/env python3
"""Exports a T5 encoder (the text encoder of Imagen, DeepFloyd IF, PixArt, SD3, ...) as a
TorchScript file that the C++ `ldm::data::TorchScriptTextEncoder` (datasets/tensor/torchscript_encoders.h)
loads, together with the model's SentencePiece tokenizer (spiece.model).

A plain-PyTorch re-implementation (no transformers needed), run with Debian's python3-torch 1.13 so
that the file only uses operators LibTorch 1.13 knows: token embedding; per layer a pre-norm
self-attention (RMS layer norm, no biases, NO 1/sqrt(d) scaling of the logits, a relative position
bias computed by the first layer's bucket embedding and shared by all layers) and a pre-norm
feed-forward (T5 v1.0: relu; T5 v1.1 / Flan-T5: gated-gelu with the tanh GELU); final RMS norm.

Module contract (what the C++ side calls):
  forward(input_ids: int64 [N,L], attention_mask: int64 [N,L]) -> float [N,L,D], the last hidden
  state (padding positions are computed but meaningless); attribute hidden_size (int).

Weights: .safetensors, .bin/.pt (torch.save), or a sharded *.index.json, with Hugging Face names
(shared.weight or encoder.embed_tokens.weight, encoder.block.N.layer.0.SelfAttention.{q,k,v,o}.weight,
encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight, encoder.block.N.layer.0.layer_norm.weight,
encoder.block.N.layer.1.DenseReluDense.{wi | wi_0,wi_1}.weight, ...wo.weight, layer.1.layer_norm.weight,
encoder.final_layer_norm.weight). A full T5 (T5ForConditionalGeneration) loads too: its decoder.* and
lm_head.weight are skipped. Unknown or missing keys are an error that lists them.

Examples:
  python3 export_text_encoder.py --weights t5-v1_1-xl/model.safetensors.index.json \
      --config t5-v1_1-xl/config.json --out t5-xl-encoder.pt --check
  python3 export_text_encoder.py --random --seed 1 --vocab-size 100 --out tiny-t5.pt
  python3 export_text_encoder.py --train-tokenizer captions.txt --vocab 100 --out-tokenizer tiny.model
"""

import argparse
import json
import math
import os
import sys
import tempfile

import torch
import torch.nn as nn

from weights_io import assign, load_state_dict


# ---------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """T5LayerNorm: x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias."""

    eps: float

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


class GeluTanh(nn.Module):
    """Hugging Face's "gelu_new" (the tanh approximation), used by T5 v1.1's gated-gelu."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def make_activation(name):
    if name == "relu":
        return nn.ReLU()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return GeluTanh()
    if name == "gelu":
        return nn.GELU()
    if name in ("silu", "swish"):
        return nn.SiLU()
    raise ValueError(f"unsupported activation {name!r} (relu, gelu, gelu_new, silu)")


class DenseReluDense(nn.Module):
    def __init__(self, d_model: int, d_ff: int, act: str):
        super().__init__()
        self.wi = nn.Linear(d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d_model, bias=False)
        self.act = make_activation(act)

    def forward(self, x):
        return self.wo(self.act(self.wi(x)))


class DenseGatedActDense(nn.Module):
    def __init__(self, d_model: int, d_ff: int, act: str):
        super().__init__()
        self.wi_0 = nn.Linear(d_model, d_ff, bias=False)
        self.wi_1 = nn.Linear(d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d_model, bias=False)
        self.act = make_activation(act)

    def forward(self, x):
        return self.wo(self.act(self.wi_0(x)) * self.wi_1(x))


class Block(nn.Module):
    n_heads: int
    d_kv: int

    def __init__(self, cfg):
        super().__init__()
        inner = cfg.num_heads * cfg.d_kv
        self.n_heads = cfg.num_heads
        self.d_kv = cfg.d_kv
        self.attn_norm = RMSNorm(cfg.d_model, cfg.eps)
        self.q = nn.Linear(cfg.d_model, inner, bias=False)
        self.k = nn.Linear(cfg.d_model, inner, bias=False)
        self.v = nn.Linear(cfg.d_model, inner, bias=False)
        self.o = nn.Linear(inner, cfg.d_model, bias=False)
        self.ff_norm = RMSNorm(cfg.d_model, cfg.eps)
        if cfg.gated:
            self.ff = DenseGatedActDense(cfg.d_model, cfg.d_ff, cfg.act)
        else:
            self.ff = DenseReluDense(cfg.d_model, cfg.d_ff, cfg.act)

    def forward(self, x, bias):
        # x [N,L,D]; bias [N or 1, H, L, L] (relative positions + key mask)
        n, l, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(n, l, self.n_heads, self.d_kv).transpose(1, 2)
        k = self.k(h).view(n, l, self.n_heads, self.d_kv).transpose(1, 2)
        v = self.v(h).view(n, l, self.n_heads, self.d_kv).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3)) + bias  # T5: no 1/sqrt(d_kv)
        attn = torch.softmax(scores.float(), dim=-1).type_as(scores)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(n, l, self.n_heads * self.d_kv)
        x = x + self.o(out)
        return x + self.ff(self.ff_norm(x))


class T5Encoder(nn.Module):
    hidden_size: int
    num_buckets: int
    max_distance: int

    def __init__(self, cfg):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.rel_bias = nn.Embedding(cfg.num_buckets, cfg.num_heads)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.final_norm = RMSNorm(cfg.d_model, cfg.eps)
        self.hidden_size = cfg.d_model
        self.num_buckets = cfg.num_buckets
        self.max_distance = cfg.max_distance

    def bucket(self, rel: torch.Tensor) -> torch.Tensor:
        """T5's bidirectional relative-position bucket (exact for small distances, log-spaced after)."""
        nb = self.num_buckets // 2
        ret = (rel > 0).to(torch.long) * nb
        n = torch.abs(rel)
        max_exact = nb // 2
        is_small = n < max_exact
        large = max_exact + (
            torch.log(n.float() / max_exact) / math.log(self.max_distance / max_exact) * (nb - max_exact)
        ).to(torch.long)
        large = torch.min(large, torch.full_like(large, nb - 1))
        return ret + torch.where(is_small, n, large)

    def position_bias(self, length: int) -> torch.Tensor:
        pos = torch.arange(length, dtype=torch.long, device=self.rel_bias.weight.device)
        rel = pos[None, :] - pos[:, None]  # key - query
        values = self.rel_bias(self.bucket(rel))  # [L, L, H]
        return values.permute(2, 0, 1).unsqueeze(0)  # [1, H, L, L]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        bias = self.position_bias(input_ids.shape[1])
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -3.4028234663852886e38
        bias = bias + mask
        for b in self.blocks:
            x = b(x, bias)
        return self.final_norm(x)


# ---------------------------------------------------------------------------------------------


def convert_state_dict(sd, cfg, source):
    """Hugging Face T5 names -> ours. decoder.* and lm_head.* are skipped."""
    skipped = [k for k in sd if k.startswith("decoder.") or k.startswith("lm_head.")]
    if skipped:
        print(f"{source}: skipping {len(skipped)} decoder / lm_head keys", file=sys.stderr)
    sd = {k: v for k, v in sd.items() if k not in set(skipped)}
    out = {}
    unknown = []
    for k, v in sd.items():
        if k in ("shared.weight", "encoder.embed_tokens.weight"):
            if "embed.weight" in out:
                if not torch.equal(out["embed.weight"], v):
                    raise ValueError(f"{source}: shared.weight and encoder.embed_tokens.weight differ")
                continue
            out["embed.weight"] = v
            continue
        if k == "encoder.final_layer_norm.weight":
            out["final_norm.weight"] = v
            continue
        parts = k.split(".")
        # encoder.block.N.layer.M.<rest>
        if len(parts) >= 6 and parts[0] == "encoder" and parts[1] == "block" and parts[3] == "layer":
            n, m, rest = parts[2], parts[4], ".".join(parts[5:])
            if m == "0":
                if rest == "layer_norm.weight":
                    out[f"blocks.{n}.attn_norm.weight"] = v
                    continue
                if rest == "SelfAttention.relative_attention_bias.weight" and n == "0":
                    out["rel_bias.weight"] = v
                    continue
                if rest in ("SelfAttention.q.weight", "SelfAttention.k.weight", "SelfAttention.v.weight",
                            "SelfAttention.o.weight"):
                    out[f"blocks.{n}.{rest.split('.')[1]}.weight"] = v
                    continue
            if m == "1":
                if rest == "layer_norm.weight":
                    out[f"blocks.{n}.ff_norm.weight"] = v
                    continue
                if rest.startswith("DenseReluDense.") and rest.count(".") == 2:
                    out[f"blocks.{n}.ff.{rest.split('.')[1]}.weight"] = v
                    continue
        unknown.append(k)
    if unknown:
        raise ValueError(f"{source}: unknown keys ({len(unknown)}):\n  " + "\n  ".join(sorted(unknown)))
    return out


class Config:
    pass


def make_config(args):
    c = Config()
    tiny = args.random
    c.vocab_size = 32128
    c.d_model, c.d_kv, c.d_ff, c.num_layers, c.num_heads = (32, 8, 64, 2, 4) if tiny else (512, 64, 1024, 8, 6)
    c.num_buckets, c.max_distance, c.eps = 32, 128, 1e-6
    c.gated, c.act = True, "gelu_new"
    if args.config:
        with open(args.config) as f:
            j = json.load(f)
        c.vocab_size = int(j.get("vocab_size", c.vocab_size))
        c.d_model = int(j.get("d_model", c.d_model))
        c.d_kv = int(j.get("d_kv", c.d_kv))
        c.d_ff = int(j.get("d_ff", c.d_ff))
        c.num_layers = int(j.get("num_layers", c.num_layers))
        c.num_heads = int(j.get("num_heads", c.num_heads))
        c.num_buckets = int(j.get("relative_attention_num_buckets", c.num_buckets))
        c.max_distance = int(j.get("relative_attention_max_distance", c.max_distance))
        c.eps = float(j.get("layer_norm_epsilon", c.eps))
        proj = j.get("feed_forward_proj", "relu")
        c.gated = proj.startswith("gated-")
        c.act = proj[len("gated-"):] if c.gated else proj
        if proj == "gated-gelu":
            c.act = "gelu_new"  # as transformers' T5Config does
        elif j.get("dense_act_fn"):
            c.act = j["dense_act_fn"]
    for name in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "num_buckets", "max_distance"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(c, name, v)
    if args.feed_forward:
        c.gated = args.feed_forward.startswith("gated-")
        c.act = args.feed_forward[len("gated-"):] if c.gated else args.feed_forward
        if args.feed_forward == "gated-gelu":
            c.act = "gelu_new"
    make_activation(c.act)  # validates
    return c


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="checkpoint: .safetensors, .bin/.pt, or *.index.json")
    p.add_argument("--random", action="store_true", help="random weights (tests); tiny defaults")
    p.add_argument("--seed", type=int, default=0, help="seed for --random")
    p.add_argument("--config", help="a Hugging Face T5 config.json (the flags below override it)")
    p.add_argument("--vocab-size", dest="vocab_size", type=int)
    p.add_argument("--d-model", dest="d_model", type=int)
    p.add_argument("--d-kv", dest="d_kv", type=int)
    p.add_argument("--d-ff", dest="d_ff", type=int)
    p.add_argument("--num-layers", dest="num_layers", type=int)
    p.add_argument("--num-heads", dest="num_heads", type=int)
    p.add_argument("--num-buckets", dest="num_buckets", type=int)
    p.add_argument("--max-distance", dest="max_distance", type=int)
    p.add_argument("--feed-forward", help="relu (T5 v1.0), gated-gelu (T5 v1.1, Flan-T5), gated-silu, ...")
    p.add_argument("--out", help="TorchScript file to write")
    p.add_argument("--check", action="store_true", help="reload the file and compare with the eager model")
    p.add_argument("--train-tokenizer", metavar="TEXTFILE",
                   help="train a SentencePiece model (T5-style ids: pad 0, eos 1, unk 2, no bos) and exit")
    p.add_argument("--vocab", type=int, default=100, help="vocabulary size for --train-tokenizer")
    p.add_argument("--out-tokenizer", metavar="M.model", help="where --train-tokenizer writes the model")
    args = p.parse_args(argv)
    if args.train_tokenizer:
        if not args.out_tokenizer:
            p.error("--train-tokenizer needs --out-tokenizer")
    else:
        if bool(args.weights) == bool(args.random):
            p.error("give exactly one of --weights and --random")
        if not args.out:
            p.error("--out is required")
    return args


def train_tokenizer(text_file, vocab, out_model):
    import sentencepiece as spm

    if not out_model.endswith(".model"):
        raise ValueError("--out-tokenizer must end in .model")
    spm.SentencePieceTrainer.train(
        input=text_file, model_prefix=out_model[: -len(".model")], vocab_size=vocab, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False, character_coverage=1.0,
        minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=out_model)
    print(f"wrote {out_model}: {sp.get_piece_size()} pieces (pad {sp.pad_id()}, eos {sp.eos_id()}, unk {sp.unk_id()})")


def build(args):
    cfg = make_config(args)
    torch.manual_seed(args.seed)
    model = T5Encoder(cfg)
    if args.random:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.normal_(1.0, 0.1)
                elif name == "embed.weight":
                    p.normal_(0.0, 1.0)
                elif name == "rel_bias.weight":
                    p.normal_(0.0, 0.5)
                else:
                    p.normal_(0.0, 1.0 / math.sqrt(p.shape[1]))
    else:
        sd = load_state_dict(args.weights)
        assign(model, convert_state_dict(sd, cfg, args.weights), args.weights)
    return model.eval(), cfg


def check(model, path):
    torch.manual_seed(1234)
    ids = torch.randint(0, model.embed.num_embeddings, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    loaded = torch.jit.load(path)
    with torch.no_grad():
        a = model(ids, mask)
        b = loaded(ids, mask)
    err = (a - b).abs().max().item()
    print(f"check: ids {tuple(ids.shape)} -> {tuple(b.shape)}: max |python - reloaded| {err:.3g}; "
          f"hidden_size={loaded.hidden_size}")
    return err


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.train_tokenizer:
            train_tokenizer(args.train_tokenizer, args.vocab, args.out_tokenizer)
            return 0
        model, cfg = build(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"export_text_encoder: {e}", file=sys.stderr)
        return 2
    torch.jit.script(model).save(args.out)
    print(f"wrote {args.out}: vocab={cfg.vocab_size} d_model={cfg.d_model} d_kv={cfg.d_kv} d_ff={cfg.d_ff} "
          f"layers={cfg.num_layers} heads={cfg.num_heads} feed_forward={'gated-' if cfg.gated else ''}{cfg.act}")
    if args.check:
        if not check(model, args.out) <= 1e-4:
            print("check FAILED", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
