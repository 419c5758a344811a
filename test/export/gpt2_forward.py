"""GPT-2's forward pass written from a Hugging Face directory alone: an independent check of
gptmed-export --format hf (test/export/hf.test.ts runs it with Debian's /usr/bin/python3).

It reads model.safetensors with json + numpy (no safetensors or transformers library) and
config.json, and computes GPT2LMHeadModel's function in torch, float32:
  x = wte[ids] + wpe[positions]
  per block: x += c_proj(attn(ln_1(x))); x += mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
  logits = ln_f(x) @ wte^T
with causal multi-head attention scaled by 1/sqrt(head size), the exact (erf) GELU, Conv1D
weights [in, out].

  gpt2_forward.py logits DIR   stdin: [[id, ...], ...]   stdout: [[[logit, ...] per position], ...]
  gpt2_forward.py encode DIR   stdin: ["text", ...]      stdout: [[id, ...], ...] (DIR/tokenizer.model)
"""
import json
import math
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        buf = data[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {dtype}")
        tensors[name] = arr.astype(np.float32).reshape(info["shape"])
    return header.get("__metadata__", {}), tensors


def logits(model_dir, prompts):
    import torch
    import torch.nn.functional as F

    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "gpt2" and cfg["activation_function"] == "gelu"
    metadata, raw = read_safetensors(f"{model_dir}/model.safetensors")
    assert metadata.get("format") == "pt", metadata
    w = {name: torch.from_numpy(arr.copy()) for name, arr in raw.items()}
    t = lambda name: w[f"transformer.{name}"]
    n_embd, n_head, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    head = n_embd // n_head
    assert "lm_head.weight" not in w and cfg.get("tie_word_embeddings", True)

    def ln(x, name):
        return F.layer_norm(x, (n_embd,), t(f"{name}.weight"), t(f"{name}.bias"), eps)

    def conv1d(x, name):  # GPT-2's Conv1D: weight [in, out]
        return x @ t(f"{name}.weight") + t(f"{name}.bias")

    out = []
    with torch.no_grad():
        for ids in prompts:
            T = len(ids)
            x = t("wte.weight")[torch.tensor(ids)] + t("wpe.weight")[:T]
            mask = torch.ones(T, T, dtype=torch.bool).tril()
            for i in range(cfg["n_layer"]):
                q, k, v = conv1d(ln(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn").split(n_embd, dim=-1)
                q, k, v = (a.view(T, n_head, head).transpose(0, 1) for a in (q, k, v))
                scores = (q @ k.transpose(-1, -2)) / math.sqrt(head)
                scores = scores.masked_fill(~mask, float("-inf"))
                y = (scores.softmax(-1) @ v).transpose(0, 1).reshape(T, n_embd)
                x = x + conv1d(y, f"h.{i}.attn.c_proj")
                h = F.gelu(conv1d(ln(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc"))  # exact erf GELU
                x = x + conv1d(h, f"h.{i}.mlp.c_proj")
            out.append((ln(x, "ln_f") @ t("wte.weight").T).tolist())
    return out


def encode(model_dir, texts):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=f"{model_dir}/tokenizer.model")
    return [sp.encode(text) for text in texts]


if __name__ == "__main__":
    mode, model_dir = sys.argv[1], sys.argv[2]
    given = json.load(sys.stdin)
    result = logits(model_dir, given) if mode == "logits" else encode(model_dir, given)
    json.dump(result, sys.stdout)
