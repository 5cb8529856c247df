"""Reference outputs for tests/worker/eval/clip_score_test.cpp.

Usage: /usr/bin/python3 clip_reference.py OUTDIR

Tokenizer: builds two small CLIP-format BPE merges files by learning merges on a few sentences
(a header line, then "a b" lines), and tokenizes test texts with a Python re-implementation of
OpenAI CLIP's simple_tokenizer.py / clip.tokenize (written here: bytes_to_unicode, BPE by merge rank,
html.unescape twice, whitespace collapse, lower(), CLIP's regex pattern). The `regex` module is used
when installed (python3-regex), as CLIP does; otherwise `re` with the \\p{L} / \\p{N} / \\s classes
spelled out from unicodedata. ftfy is not used (it is not packaged by Debian): the re-implementation
applies the same documented subset of ftfy.fix_text as the C++ (worker/eval/clip_tokenizer.h).

  merges.txt          header, merges, an empty line inside, a duplicated merge, a trailing newline
  merges.txt.gz       the same merges without the quirks, gzip-compressed
  tokenizer.json      {"regex": bool, "texts": [...], "clean": [...], "words": [[...]],
                       "txt": {"ids": [[...]], "tokens77": [[...]], "sot", "eot", "vocab_size"},
                       "gz": {...}, "short": {"tokens8": [[...]]}, "lower": [[in, out]]}
  char_class.npy      int8 [0x110000]: 0 other, 1 letter, 2 number, 3 space, 4 unmatched; -1 = do not
                      compare (surrogates; without `regex`: code points unassigned in unicodedata)
  lower.npy           int32 [0x110000]: chr(c).lower() when one character, -1 for U+0130, -2 surrogates

CLIP: a tiny CLIP ViT written here the way OpenAI's clip/model.py is (nn.MultiheadAttention blocks,
QuickGELU, class token, causal text mask, EOT pooling; not the export script's code), random weights;
its state dict in OpenAI's names is exported with tools/export/export_clip.py, and again from
Hugging Face names (pytorch_model.bin + config.json); --random exports a second model.

  img0.png .. img5.png    RGB images of sizes that exercise the resize and center-crop rounding
  captions.txt            one caption per image (one longer than 77 tokens)
  prepared.npy            [6,3,224,224] CLIP's preprocessing (PIL bicubic resize of the shorter side,
                          center crop with Python's round, ToTensor, Normalize); checked against
                          torchvision's Compose when torchvision is installed
  ids.npy                 [6,77] clip.tokenize(captions, truncate=True) with merges.txt.gz
  openai_image.pt, openai_text.pt      export of openai_sd.pt (OpenAI names)
  archive_image.pt, archive_text.pt    export of openai_archive.pt, the model traced to a TorchScript
                                       archive as OpenAI's .pt files are (checked here against the model)
  hf_image.pt, hf_text.pt              export of hf/pytorch_model.bin + hf/config.json
  ref_image_features.npy, ref_text_features.npy   the reference model's features (float32)
  random_image.pt, random_text.pt      export_clip.py --random --seed 3
  random_image_features.npy, random_text_features.npy
  score.json              {"ref": {"cos": [...], "w100": S, "w2_5": S, "torchmetrics": T}, "random": {...}}
"""

import gzip
import html
import html.entities
import json
import os
import re
import sys
import unicodedata
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

out = Path(sys.argv[1])
tools = Path(__file__).resolve().parents[3] / "tools" / "export"  # <root>/tests/worker/reference/ -> <root>
if not tools.exists() and os.environ.get("LDM_SOURCE_DIR"):
    tools = Path(os.environ["LDM_SOURCE_DIR"]) / "tools" / "export"
if not (tools / "export_clip.py").exists():
    sys.exit(f"export scripts not found under {tools} (set LDM_SOURCE_DIR)")
sys.path.insert(0, str(tools))
import export_clip  # noqa: E402

torch.set_num_threads(1)

try:
    import regex  # the module CLIP's tokenizer uses

    HAVE_REGEX = True
except ImportError:
    HAVE_REGEX = False
print("regex module:", HAVE_REGEX)

# ---- character classes --------------------------------------------------------------------------

WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]


def category_ranges(prefix):
    rs, start = [], None
    for cp in range(0x110001):
        ok = cp < 0x110000 and unicodedata.category(chr(cp)).startswith(prefix)
        if ok and start is None:
            start = cp
        if not ok and start is not None:
            rs.append((start, cp - 1))
            start = None
    return rs


def class_of(ranges):
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


if HAVE_REGEX:
    PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)
    WS_RUN = regex.compile(r"\s+")
else:
    L_CLASS, N_CLASS, S_CLASS = class_of(category_ranges("L")), class_of(category_ranges("N")), class_of(WHITE_SPACE)
    PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                     f"[{L_CLASS}]+|[{N_CLASS}]|[^{S_CLASS}{L_CLASS}{N_CLASS}]+", re.IGNORECASE)
    WS_RUN = re.compile(f"[{S_CLASS}]+")

# ---- the documented ftfy subset ---------------------------------------------------------------------

FTFY_ENTITY = re.compile(r"&#?[0-9A-Za-z]{1,24};")
FTFY_ENTITIES = {"&" + k: v for k, v in html.entities.html5.items() if k.endswith(";")}
LIGATURES = {0x132: "IJ", 0x133: "ij", 0x149: "\u02bcn", 0x1F1: "DZ", 0x1F2: "Dz", 0x1F3: "dz", 0x1C4: "D\u017d",
             0x1C5: "D\u017e", 0x1C6: "d\u017e", 0x1C7: "LJ", 0x1C8: "Lj", 0x1C9: "lj", 0x1CA: "NJ", 0x1CB: "Nj",
             0x1CC: "nj", 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl", 0xFB05: "\u017ft",
             0xFB06: "st"}
WIDTH = {0x3000: " "}
for _cp in range(0xFF01, 0xFFF0):
    _n = unicodedata.normalize("NFKC", chr(_cp))
    if _n != chr(_cp):
        WIDTH[_cp] = _n
CONTROL = {c: None for c in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, *range(0x206A, 0x2070), 0xFEFF,
                             *range(0xFFF9, 0xFFFD)]}


def c1_to_cp1252(m):
    b = bytes([ord(m.group(0))])
    try:
        return b.decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D stay
        return m.group(0)


def ftfy_entity(m):
    t = m.group(0)
    if t in FTFY_ENTITIES:
        return FTFY_ENTITIES[t]
    if t.startswith("&#"):
        u = html.unescape(t)
        return t if ";" in u else u
    return t


def ftfy_fixes(seg, unescape):
    while True:
        before = seg
        if unescape:
            seg = FTFY_ENTITY.sub(ftfy_entity, seg)
        seg = re.sub("[\x80-\x9f]", c1_to_cp1252, seg)
        seg = seg.translate(LIGATURES).translate(WIDTH)
        seg = re.sub("[\u02bc\u2018-\u201b]", "'", re.sub("[\u201c-\u201f]", '"', seg))
        seg = seg.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
        seg = seg.replace("\x85", "\n")
        seg = re.sub("\x1b\\[((?:\\d|;)*)([a-zA-Z])", "", seg)
        seg = seg.translate(CONTROL)
        if seg == before:
            return seg


def ftfy_subset(text):
    parts, pos, unescape = [], 0, True
    while pos < len(text):
        brk = text.find("\n", pos) + 1 or len(text)
        brk = min(brk, pos + 1_000_000)
        seg = text[pos:brk]
        if unescape and "<" in seg:
            unescape = False
        parts.append(ftfy_fixes(seg, unescape))
        pos = brk
    return "".join(parts)


def clean(text):
    text = html.unescape(html.unescape(ftfy_subset(text))).strip()
    return WS_RUN.sub(" ", text).strip().lower()


# ---- simple_tokenizer ---------------------------------------------------------------------------------


def byte_symbols():
    """bytes_to_unicode(): printable Latin-1 bytes map to themselves, the others to 256 + n."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    table = OrderedDict((b, chr(b)) for b in keep)
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Tokenizer:
    def __init__(self, merges_text):
        self.bytes = byte_symbols()
        lines = merges_text.split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(line.split()) for line in lines]
        vocab = list(self.bytes.values())
        vocab += [s + "</w>" for s in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {s: i for i, s in enumerate(vocab)}  # a repeated string keeps its last id
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.vocab_size = len(vocab)
        self.sot, self.eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]

    def bpe(self, token):
        if token in ("<|startoftext|>", "<|endoftext|>"):
            return [token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            ranked = [(self.ranks[p], p) for p in zip(word, word[1:]) if p in self.ranks]
            if not ranked:
                break
            _, (a, b) = min(ranked)
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def words(self, text):
        return PAT.findall(clean(text))

    def encode(self, text):
        ids = []
        for w in self.words(text):
            sym = "".join(self.bytes[b] for b in w.encode("utf-8"))
            ids += [self.encoder[s] for s in self.bpe(sym)]
        return ids

    def tokenize(self, text, context_length=77):
        ids = [self.sot] + self.encode(text) + [self.eot]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.eot
        return ids + [0] * (context_length - len(ids))


def learn_merges(corpus, count):
    """Plain BPE training on byte symbols with "</w>" on the last one; ties broken by the pair."""
    table = byte_symbols()
    words = Counter()
    for w in PAT.findall(clean(corpus)):
        sym = [table[b] for b in w.encode("utf-8")]
        words[tuple(sym[:-1] + [sym[-1] + "</w>"])] += 1
    merges = []
    for _ in range(count):
        pairs = Counter()
        for w, n in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new = Counter()
        for w, n in words.items():
            out_w, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out_w.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out_w.append(w[i])
                    i += 1
            new[tuple(out_w)] += n
        words = new
    return merges


CORPUS = """A photo of a cat sitting on a mat. A photo of a dog playing in the park. An oil painting of a
mountain lake at sunset, trending on artstation. It's a dog's life; they're here, we've seen, I'm sure
you'll see what he'd say. The quick brown fox jumps over the lazy dog 1234567890 times. Café au lait,
naïve résumé, straße, Ελληνικά, русский текст, 日本語のテキスト, 中文文本. aaaa aaa aa a banana bandana"""

TEXTS = [
    "A photo of a cat.",
    "a photo of a dog",
    "  Multiple   spaces\tand\nnewlines  ",
    "It's a dog's life, isn't it? We'll see; they'd've DON'T",
    "numbers 12345 and 3.14159 and 1,000,000",
    "emoji \U0001F436\U0001F431 and symbols \u00a9\u00ae\u2122 \u2192 \u2190 \u221e",
    "\u00dcn\u00efc\u00f6d\u00e9 caf\u00e9 na\u00efve r\u00e9sum\u00e9 STRASSE stra\u00dfe",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587 \u0440\u0443\u0441\u0441\u043a\u0438\u0439",
    "\u0395\u039b\u039b\u0397\u039d\u0399\u039a\u0391 \u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3 \u0391\u03a3'\u0392",
    "it\u2019s \u201cquoted\u201d \u2018single\u2019",
    "&amp; &lt;tag&gt; &quot;q&quot; &#39;x&#39; &#x41; &nbsp;x &eacute",
    "fish &amp;amp;amp; chips &amplifier &notin; &#128; &#0; &#1114112; &#65&#66",
    "<b>bold</b> &amp; more",
    "\ufb01ne \ufb02ow \u01c4 \uff26\uff35\uff2c\uff2c\u3000\uff54\uff45\uff58\uff54\uff11\uff12",
    "tab\there \x93curly\x94 \x85 control\x01\x7f \x1b[31mred\x1b[0m bom\ufeffbom",
    "line1\r\nline2\rline3\u2028line4",
    "<|endoftext|> inside a<|startoftext|>b !<|endoftext|>",
    "'s '' ''s a' x'S y'Ll z'D \u017f'\u017f '\u017f",
    "\u2160 roman \u216b \u2460\u2461 \u00bc \u00b2\u00b3 \u0660\u0661\u0662 \u0130stanbul",
    "aaaa aaaaa aaa banana bananas bandana",
    "",
    "   ",
    " ".join(["word"] * 90),  # longer than 77 tokens
]

CAPTIONS = [
    "A photo of a cat sitting on a mat.",
    "an oil painting of a mountain lake at sunset",
    "It\u2019s a dog\u2019s life &amp; the park",
    "Caf\u00e9 au lait, na\u00efve r\u00e9sum\u00e9 \U0001F436",
    " ".join(["banana"] * 100),
    "the quick brown fox jumps over the lazy dog 1234567890",
]

# (height, width): resize to the shorter side 224, crop offsets with round-half-even
SIZES = [(224, 227), (150, 151), (64, 80), (400, 300), (31, 47), (500, 229)]


def main():
    merges = learn_merges(CORPUS, 260)
    lines = [f"{a} {b}" for a, b in merges]
    # .txt: an empty line inside, the first merge again near the end (its rank moves there), a merge
    # whose parts never occur, a merge whose string exists already ("a</w>" takes the later id), and a
    # trailing newline.
    quirky = lines[:100] + [""] + lines[100:] + [lines[0], "zz qq", "a </w>"]
    txt = "#version: 0.2 (test)\n" + "\n".join(quirky) + "\n"
    gz = "#version: 0.2 (test)\n" + "\n".join(lines)
    (out / "merges.txt").write_text(txt, encoding="utf-8")
    with gzip.open(out / "merges.txt.gz", "wb") as f:
        f.write(gz.encode("utf-8"))
    tok_txt, tok_gz = Tokenizer(txt), Tokenizer(gz)
    assert tok_txt.vocab_size != tok_gz.vocab_size
    short = [tok_gz.tokenize(t, 8) for t in TEXTS]
    lower_cases = ["\u0391\u03a3", "\u0391\u03a3 \u03a3", "\u0391\u03a3'\u0392", "A\u03a3.", "\u03a3A", "\u0130I",
                   "\u1e9e STRASSE", "\u01c5 \u01c4", "\u03a3\u0345\u03a3", "x\u00ad\u03a3"]
    ref = {
        "regex": HAVE_REGEX,
        "texts": TEXTS,
        "clean": [clean(t) for t in TEXTS],
        "words": [tok_gz.words(t) for t in TEXTS],
        "lower": [[s, s.lower()] for s in lower_cases],
        "short": {"tokens8": short},
    }
    for name, tok in (("txt", tok_txt), ("gz", tok_gz)):
        ref[name] = {"ids": [tok.encode(t) for t in TEXTS], "tokens77": [tok.tokenize(t) for t in TEXTS],
                     "sot": tok.sot, "eot": tok.eot, "vocab_size": tok.vocab_size}
    (out / "tokenizer.json").write_text(json.dumps(ref, ensure_ascii=True))

    classes = np.full(0x110000, -1, dtype=np.int8)
    lower = np.full(0x110000, -2, dtype=np.int32)
    if HAVE_REGEX:
        pl, pn = regex.compile(r"[\p{L}]", regex.I), regex.compile(r"[\p{N}]", regex.I)
        po, ps = regex.compile(r"[^\s\p{L}\p{N}]", regex.I), regex.compile(r"\s")
    ws = {c for a, b in WHITE_SPACE for c in range(a, b + 1)}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        lo = ch.lower()
        lower[cp] = ord(lo) if len(lo) == 1 else -1
        if HAVE_REGEX:
            if ps.match(ch):
                classes[cp] = 3
            elif pl.match(ch):
                classes[cp] = 1
            elif pn.match(ch):
                classes[cp] = 2
            elif po.match(ch):
                classes[cp] = 0
            else:
                classes[cp] = 4
        else:
            cat = unicodedata.category(ch)
            if cat == "Cn" or cp == 0x345:
                continue
            classes[cp] = 3 if cp in ws else 1 if cat[0] == "L" else 2 if cat[0] == "N" else 0
    np.save(out / "char_class.npy", classes)
    np.save(out / "lower.npy", lower)

    clip_part(tok_gz)
    print("done")


# ---- CLIP -------------------------------------------------------------------------------------------

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(img, n_px=224):
    """clip.load's _transform: Resize(n_px, BICUBIC), CenterCrop(n_px), ToTensor, Normalize."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(n_px * long / short)
    size = (n_px, new_long) if w <= h else (new_long, n_px)
    img = img.resize(size, Image.BICUBIC)
    top, left = int(round((size[1] - n_px) / 2.0)), int(round((size[0] - n_px) / 2.0))
    img = img.crop((left, top, left + n_px, top + n_px))
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).to(torch.float32).div(255)
    return x.sub(torch.tensor(MEAN, dtype=torch.float32)[:, None, None]).div(torch.tensor(STD, dtype=torch.float32)[:, None, None])


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, width, heads, mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, width * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(width * 4, width))]))
        self.ln_2 = nn.LayerNorm(width)
        self.mask = mask

    def forward(self, x):  # [L, N, W], sequence first as in clip/model.py
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=self.mask)[0]
        return x + self.mlp(self.ln_2(x))


class RefCLIP(nn.Module):
    def __init__(self, vocab, embed=24, res=224, patch=32, vw=64, vh=2, vl=2, ctx=77, tw=32, th=2, tl=2):
        super().__init__()
        g = res // patch
        self.visual = nn.Module()
        v = self.visual
        v.conv1 = nn.Conv2d(3, vw, patch, patch, bias=False)
        v.class_embedding = nn.Parameter(torch.randn(vw) * vw ** -0.5)
        v.positional_embedding = nn.Parameter(torch.randn(g * g + 1, vw) * vw ** -0.5)
        v.ln_pre = nn.LayerNorm(vw)
        v.transformer = nn.Module()
        v.transformer.resblocks = nn.Sequential(*[Block(vw, vh) for _ in range(vl)])
        v.ln_post = nn.LayerNorm(vw)
        v.proj = nn.Parameter(torch.randn(vw, embed) * vw ** -0.5)
        mask = torch.full((ctx, ctx), float("-inf")).triu_(1)
        self.token_embedding = nn.Embedding(vocab, tw)
        self.positional_embedding = nn.Parameter(torch.randn(ctx, tw) * 0.01)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.Sequential(*[Block(tw, th, mask) for _ in range(tl)])
        self.ln_final = nn.LayerNorm(tw)
        self.text_projection = nn.Parameter(torch.randn(tw, embed) * tw ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))
        with torch.no_grad():  # every LayerNorm and bias away from its default
            for name, p in self.named_parameters():
                if "ln_" in name:
                    p.add_(torch.randn_like(p) * 0.1)
                elif name.endswith("bias"):
                    p.add_(torch.randn_like(p) * 0.02)

    def encode_image(self, x):
        v = self.visual
        x = v.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([v.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1]), x], dim=1) + v.positional_embedding
        x = v.transformer.resblocks(v.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return v.ln_post(x[:, 0, :]) @ v.proj

    def encode_text(self, ids):
        x = self.token_embedding(ids) + self.positional_embedding
        x = self.transformer.resblocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, ids):  # for torch.jit.trace, as OpenAI's archives were made
        return self.encode_image(image), self.encode_text(ids)


def to_hf(sd):
    """OpenAI names -> Hugging Face CLIPModel names (q/k/v split)."""
    hf = {"logit_scale": sd["logit_scale"], "visual_projection.weight": sd["visual.proj"].t().contiguous(),
          "text_projection.weight": sd["text_projection"].t().contiguous()}
    ren = {"visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
           "visual.class_embedding": "vision_model.embeddings.class_embedding",
           "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
           "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
           "positional_embedding": "text_model.embeddings.position_embedding.weight"}
    for k, v in sd.items():
        if k in ren:
            hf[ren[k]] = v
            continue
        for a, b in (("visual.ln_pre.", "vision_model.pre_layrnorm."), ("visual.ln_post.", "vision_model.post_layernorm."),
                     ("ln_final.", "text_model.final_layer_norm.")):
            if k.startswith(a):
                hf[b + k[len(a):]] = v
        m = re.match(r"(visual\.)?transformer\.resblocks\.(\d+)\.(.*)", k)
        if not m:
            continue
        base = ("vision_model" if m.group(1) else "text_model") + f".encoder.layers.{m.group(2)}."
        rest = m.group(3)
        if rest.startswith("attn.in_proj_"):
            kind = rest.split("_")[-1]
            for name, part in zip("qkv", v.chunk(3, dim=0)):
                hf[f"{base}self_attn.{name}_proj.{kind}"] = part.clone()
            continue
        for a, b in (("attn.out_proj.", "self_attn.out_proj."), ("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."),
                     ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2.")):
            if rest.startswith(a):
                hf[base + b + rest[len(a):]] = v
    hf["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    return hf


def cos_scores(img, txt):
    a, b = img.double(), txt.double()
    cos = ((a / a.norm(dim=1, keepdim=True)) * (b / b.norm(dim=1, keepdim=True))).sum(1)
    return {"cos": cos.tolist(), "w100": (100 * cos).clamp_min(0).mean().item(),
            "w2_5": (2.5 * cos).clamp_min(0).mean().item(), "torchmetrics": max(100 * cos.mean().item(), 0.0)}


def clip_part(tok):
    rng = np.random.RandomState(0)
    images = []
    for i, (h, w) in enumerate(SIZES):
        coarse = rng.randint(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.float64)
        smooth = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
        arr = np.clip(smooth * 0.8 + rng.randint(0, 52, size=(h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr, "RGB").save(out / f"img{i}.png")
        images.append(Image.open(out / f"img{i}.png").convert("RGB"))
    x = torch.stack([clip_preprocess(im) for im in images])
    try:
        from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

        tv = Compose([Resize(224, interpolation=InterpolationMode.BICUBIC), CenterCrop(224), ToTensor(), Normalize(MEAN, STD)])
        y = torch.stack([tv(im) for im in images])
        assert torch.equal(x, y), (x - y).abs().max()
        print("preprocessing equals torchvision's Compose")
    except ImportError:
        print("torchvision missing: preprocessing not compared with torchvision")
    np.save(out / "prepared.npy", x.numpy())
    (out / "captions.txt").write_text("\n".join(CAPTIONS) + "\n", encoding="utf-8")
    ids = torch.tensor([tok.tokenize(c) for c in CAPTIONS], dtype=torch.long)
    np.save(out / "ids.npy", ids.numpy())

    torch.manual_seed(7)
    model = RefCLIP(tok.vocab_size).eval()
    sd = model.state_dict()
    torch.save(sd, out / "openai_sd.pt")
    rc = export_clip.main(["--weights", str(out / "openai_sd.pt"), "--activation", "quick_gelu", "--check",
                           "--vision-heads", "2", "--text-heads", "2",
                           "--out-image", str(out / "openai_image.pt"), "--out-text", str(out / "openai_text.pt")])
    assert rc == 0, rc
    (out / "hf").mkdir()
    torch.save(to_hf(sd), out / "hf" / "pytorch_model.bin")
    cfg = {"vision_config": {"hidden_act": "quick_gelu", "num_attention_heads": 2},
           "text_config": {"hidden_act": "quick_gelu", "num_attention_heads": 2}}
    (out / "hf" / "config.json").write_text(json.dumps(cfg))
    rc = export_clip.main(["--weights", str(out / "hf" / "pytorch_model.bin"), "--config", str(out / "hf" / "config.json"),
                           "--out-image", str(out / "hf_image.pt"), "--out-text", str(out / "hf_text.pt")])
    assert rc == 0, rc
    with torch.no_grad():
        fi, ft = model.encode_image(x), model.encode_text(ids)
    np.save(out / "ref_image_features.npy", fi.numpy())
    np.save(out / "ref_text_features.npy", ft.numpy())
    # a TorchScript archive like OpenAI's ViT-B-32.pt: QuickGELU without --activation
    torch.jit.trace(model, (x[:2], ids[:2]), check_trace=False).save(str(out / "openai_archive.pt"))
    rc = export_clip.main(["--weights", str(out / "openai_archive.pt"), "--vision-heads", "2", "--text-heads", "2",
                           "--out-image", str(out / "archive_image.pt"), "--out-text", str(out / "archive_text.pt")])
    assert rc == 0, rc
    with torch.no_grad():
        ai, at = torch.jit.load(str(out / "archive_image.pt"))(x), torch.jit.load(str(out / "archive_text.pt"))(ids)
    assert (ai - fi).abs().max() <= 1e-5 * fi.abs().max() and (at - ft).abs().max() <= 1e-5 * ft.abs().max()
    # a state dict without --activation must be refused (the activation is not in the weights)
    assert export_clip.main(["--weights", str(out / "openai_sd.pt"), "--vision-heads", "2", "--text-heads", "2",
                             "--out-image", str(out / "x.pt"),
                             "--out-text", str(out / "y.pt")]) == 2

    args = export_clip.parse_args(["--random", "--seed", "3", "--vocab-size", str(tok.vocab_size),
                                   "--out-image", str(out / "random_image.pt"), "--out-text", str(out / "random_text.pt")])
    ri, rt, _ = export_clip.build(args)
    export_clip.export(ri, rt, args.out_image, args.out_text)
    with torch.no_grad():
        gi, gt = ri(x), rt(ids)
    np.save(out / "random_image_features.npy", gi.numpy())
    np.save(out / "random_text_features.npy", gt.numpy())
    scores = {"ref": cos_scores(fi, ft), "random": cos_scores(gi, gt)}
    (out / "score.json").write_text(json.dumps(scores))
    print("scores", json.dumps(scores))


if __name__ == "__main__":
    main()
