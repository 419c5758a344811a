#!/usr/bin/python3
"""Continue training a gptmed model in PyTorch, on one process or many (DistributedDataParallel).

Reads a Hugging Face GPT-2 directory written by `gptmed-export --format hf` (config.json,
model.safetensors, tokenizer.model) and gptmed's .npy shards (meta.json beside them), trains with
gptmed's recipe (AdamW with decay on the c_attn/c_proj/c_fc weights only, linear warmup then cosine to
--min-lr, global-norm clipping; loss on non-pad targets, answer tokens only where train.mask.npy exists),
and writes the same kind of directory to --out, which `gptmed-import --from OUT -o RUN` brings home.
Needs only torch and numpy (safetensors are read and written here with json + numpy + struct).

  one process:   /usr/bin/python3 scripts/torch/train_ddp.py --model hf/ --train-data data/tokenized/train.npy \
                     --val-data data/tokenized/val.npy --out hf-more/ --max-steps 1000
  N CPU procs:   torchrun --nproc_per_node N scripts/torch/train_ddp.py ...            (gloo)
  8 GPUs:        torchrun --nproc_per_node 8 scripts/torch/train_ddp.py ... --device cuda   (nccl)
  2 nodes:       on each: torchrun --nnodes 2 --node_rank R --nproc_per_node 8 \
                     --master_addr HOST0 --master_port 29500 scripts/torch/train_ddp.py ...
                 (every node needs the model and the shards at the same paths; global rank 0 writes --out)
  torch 1.13 on Python 3.11 (Debian 12's python3-torch): torchrun fails at start with "'NoneType' object has
  no attribute 'get'" (its default --redirects); add `--redirects 1 --tee 1` (rank 0's lines come prefixed).

--batch-size is rows per process: one step sees batch-size x world-size rows. Each epoch visits the rows
in an order shuffled by (seed, epoch); process r takes rows r, r + W, ... of each step's rows (as
DistributedSampler does), and the last rows of an epoch that do not fill a whole step are skipped.
The loss of a step is the mean over the counted targets of all processes' rows, as in gptmed-train.
Evaluations (at step 0, every --eval-interval and at the end) use the first val rows, as gptmed-train does.
The output's config.json "gptmed" block gets step + --max-steps and the last val loss; the weights are F32.
"""
import argparse, hashlib, json, math, os, shutil, struct, sys, time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


def fail(msg):
    sys.exit(f"train_ddp.py: error: {msg}")


# --- safetensors: an 8-byte header length, a JSON header, then the raw little-endian tensors ---
def read_safetensors(path):
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        data = f.read()
    meta, tensors = header.pop("__metadata__", None), {}
    for name, t in header.items():
        raw = data[t["data_offsets"][0]:t["data_offsets"][1]]
        if t["dtype"] == "BF16":
            a = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
        else:
            a = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[t["dtype"]]).astype(np.float32)
        tensors[name] = torch.from_numpy(a.reshape(t["shape"]).copy())
    return tensors, meta


def write_safetensors(path, tensors, meta=None):
    header, arrays, offset = ({"__metadata__": meta} if meta else {}), [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().float().numpy().astype("<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for a in arrays:
            f.write(a.tobytes())


# --- GPT-2 with Hugging Face's names; gptmed's embedding scale is already folded into the export ---
class Conv1D(nn.Module):  # GPT-2's linear layer: weight [in, out], as gptmed stores it
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.empty(n_in, n_out)), nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.p = c["n_head"], c.get("attn_pdrop", 0.0)
        self.c_attn, self.c_proj = Conv1D(c["n_embd"], 3 * c["n_embd"]), Conv1D(c["n_embd"], c["n_embd"])
        self.resid_dropout = nn.Dropout(c.get("resid_pdrop", 0.0))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (z.view(B, T, self.n_head, -1).transpose(1, 2) for z in self.c_attn(x).split(C, 2))
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
            att = att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = F.dropout(att.softmax(-1), self.p, self.training) @ v
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        n_inner = c.get("n_inner") or 4 * c["n_embd"]
        self.c_fc, self.c_proj = Conv1D(c["n_embd"], n_inner), Conv1D(n_inner, c["n_embd"])
        # "gelu" is the exact (erf) GELU gptmed uses; "gelu_new" the tanh form
        self.approximate = "none" if c.get("activation_function", "gelu") == "gelu" else "tanh"
        self.dropout = nn.Dropout(c.get("resid_pdrop", 0.0))

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        eps = c.get("layer_norm_epsilon", 1e-5)
        self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(c["n_embd"], eps), Attention(c), nn.LayerNorm(c["n_embd"], eps), MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab_size"], c["n_embd"]), wpe=nn.Embedding(c["n_positions"], c["n_embd"]),
            drop=nn.Dropout(c.get("embd_pdrop", 0.0)), h=nn.ModuleList(Block(c) for _ in range(c["n_layer"])),
            ln_f=nn.LayerNorm(c["n_embd"], c.get("layer_norm_epsilon", 1e-5))))

    def forward(self, idx):  # logits [B, T, vocab]; the LM head is the token embedding (tied)
        t = self.transformer
        x = t.drop(t.wte(idx) + t.wpe(torch.arange(idx.shape[1], device=idx.device)))
        for block in t.h:
            x = block(x)
        return F.linear(t.ln_f(x), t.wte.weight)


# --- gptmed's shards: [rows, seqLen] ids (meta.json beside them), read through memory maps ---
def load_split(npy_path):  # all files of the split npy_path belongs to (gptmed-tokenize --shard-size)
    shards = os.path.dirname(os.path.abspath(npy_path))
    meta = json.load(open(os.path.join(shards, "meta.json")))
    split = next((s for s in meta["splits"].values() if s and os.path.basename(npy_path) in s["files"]), None)
    if split is None:
        fail(f"{npy_path}: not listed in {shards}/meta.json")
    load = lambda files: [np.load(os.path.join(shards, f), mmap_mode="r") for f in files]
    rows, masks = load(split["files"]), load(split.get("maskFiles") or [])
    rows, masks = (np.concatenate(x) if len(x) > 1 else x[0] if x else None for x in (rows, masks))
    if rows.shape != (split["rows"], meta["seqLen"]):
        fail(f"{npy_path}: shape {rows.shape}, meta.json says ({split['rows']}, {meta['seqLen']})")
    return dict(meta=meta, rows=rows, mask=masks, pad=meta["specialIds"]["pad"])


def get_batch(split, ids, device):  # x = row[:-1], y = row[1:], w = 1 where y counts in the loss
    rows = torch.from_numpy(split["rows"][ids].astype(np.int64))
    w = rows[:, 1:] != split["pad"]  # padding never counts
    if split["mask"] is not None:  # train.mask.npy: answer tokens only
        w &= torch.from_numpy(split["mask"][ids][:, 1:] == 1)
    return rows[:, :-1].to(device), rows[:, 1:].to(device), w.float().to(device)


def lr_at(step, a):  # step is 1-based, as in src/train/schedule.ts
    if step <= a.warmup_steps:
        return a.learning_rate * step / a.warmup_steps
    progress = min(1.0, (step - a.warmup_steps) / max(1, a.max_steps - a.warmup_steps))
    return a.min_lr + 0.5 * (a.learning_rate - a.min_lr) * (1 + math.cos(math.pi * progress))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="hf directory from gptmed-export --format hf")
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--val-data", required=True)
    ap.add_argument("--out", required=True, help="hf directory to write (refused if it exists, unless --force)")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=16, help="rows per process per step")
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0, help="global gradient norm (0: off)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--eval-interval", type=int, default=500)
    ap.add_argument("--eval-batches", type=int, default=100, help="evaluate the first eval-batches x batch-size x processes val rows")
    ap.add_argument("--log-interval", type=int, default=10)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    return ap.parse_args()


def read_inputs(a, global_batch):  # the model directory and the shards, checked against each other
    config = json.load(open(os.path.join(a.model, "config.json")))
    tensors, st_meta = read_safetensors(os.path.join(a.model, "model.safetensors"))
    train, val = load_split(a.train_data), load_split(a.val_data)
    meta = train["meta"]
    with open(os.path.join(a.model, "tokenizer.model"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    for path, split in ((a.train_data, train), (a.val_data, val)):
        if split["meta"]["tokenizer"]["sha256"] != sha:
            fail(f"{path}: the shards were made with another tokenizer than {a.model}/tokenizer.model")
    if meta["seqLen"] - 1 > config["n_positions"] or meta["vocabSize"] != config["vocab_size"]:
        fail(f"{a.train_data}: rows of {meta['seqLen']} / vocabulary {meta['vocabSize']} do not fit {a.model}")
    if len(train["rows"]) < global_batch:
        fail(f"{a.train_data}: {len(train['rows'])} rows, fewer than one step's {global_batch}")
    return config, tensors, st_meta, train, val


def write_hf_dir(a, config, tensors, st_meta, val_loss, rows, seq_len, world):
    """--out as gptmed-export --format hf writes it, the gptmed block moved on; beside --out, then renamed."""
    out = os.path.abspath(a.out)
    tmp, old = (os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.{s}-{os.getpid()}") for s in ("tmp", "old"))
    block = config.setdefault("gptmed", {"format": "gptmed-hf", "version": 1})  # see src/export/hf.ts
    step = block.get("step", 0) + a.max_steps
    block.update(step=step, seqLen=seq_len, lastValLoss=val_loss, tokensSeen=block.get("tokensSeen", 0) + rows * (seq_len - 1))
    if block.get("bestValLoss") is None or val_loss < block["bestValLoss"]:
        block.update(bestValLoss=val_loss, bestStep=step)
    config["torch_dtype"] = "float32"
    os.makedirs(tmp)
    try:
        for name in os.listdir(a.model):  # tokenizer.model, generation_config.json, README.md, ...
            if name not in ("config.json", "model.safetensors") and os.path.isfile(os.path.join(a.model, name)):
                shutil.copy2(os.path.join(a.model, name), tmp)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            f.write(json.dumps(config, indent=2) + "\n")
        write_safetensors(os.path.join(tmp, "model.safetensors"), tensors, st_meta)
        if os.path.exists(os.path.join(tmp, "README.md")):
            with open(os.path.join(tmp, "README.md"), "a") as f:
                f.write(f"\n## Continued in PyTorch\nscripts/torch/train_ddp.py: {a.max_steps} more steps on {world} "
                        f"processes ({rows // a.max_steps} rows a step, lr {a.learning_rate}), to step {step}; val loss {val_loss:.4f}.\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.lexists(out):
        os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"wrote {a.out}: step {step}, val loss {val_loss:.4f}", flush=True)


def main():
    a = parse_args()
    ddp = "RANK" in os.environ  # started by torchrun
    rank, world, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")) if ddp else (0, 1, 0)
    cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if rank == 0 and os.path.lexists(a.out) and not a.force:
        fail(f"{a.out}: already exists; pass --force to replace it")
    if ddp:
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    log = print if rank == 0 else (lambda *_, **__: None)

    global_batch = a.batch_size * world
    config, tensors, st_meta, train, val = read_inputs(a, global_batch)
    meta = train["meta"]
    steps_per_epoch = len(train["rows"]) // global_batch

    torch.manual_seed(a.seed + rank)  # dropout differs per process
    model = GPT2(config)
    model.load_state_dict({k: v for k, v in tensors.items() if k != "lm_head.weight"})  # strict: same names
    model.to(device)
    raw = model
    if ddp:
        model = DDP(model, device_ids=[local_rank] if cuda else None)
    decay = [p for n, p in raw.named_parameters() if n.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))]
    no_decay = [p for n, p in raw.named_parameters() if not n.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.learning_rate, betas=(0.9, 0.95), eps=1e-8)

    def evaluate():  # mean loss over the counted targets of the first val rows (as gptmed-train), shared out
        model.eval()
        mine = np.arange(min(len(val["rows"]), a.eval_batches * global_batch))[rank::world]
        total = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for start in range(0, len(mine), a.batch_size):
                x, y, w = get_batch(val, mine[start:start + a.batch_size], device)
                ce = F.cross_entropy(raw(x).flatten(0, 1), y.flatten(), reduction="none")
                total += torch.stack([(ce * w.flatten()).sum().double(), w.sum().double()])
        if ddp:
            dist.all_reduce(total)
        model.train()
        return (total[0] / total[1]).item()

    val_loss = evaluate()
    log(f"step 0 val loss {val_loss:.4f}", flush=True)
    t0 = time.time()
    for step in range(1, a.max_steps + 1):
        epoch, k = divmod(step - 1, steps_per_epoch)
        if step == 1 or k == 0:  # the same order in every process: seeded by (seed, epoch)
            order = np.random.default_rng([a.seed, epoch]).permutation(len(train["rows"]))
        ids = order[k * global_batch:(k + 1) * global_batch][rank::world]  # this process's disjoint share
        x, y, w = get_batch(train, ids, device)
        targets = w.sum()  # the loss is the mean over the counted targets of the whole step, all processes
        if ddp:
            dist.all_reduce(targets)
        ce = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="none")
        loss = (ce * w.flatten()).sum() / targets.clamp(min=1)
        (loss * world).backward()  # DDP averages gradients over processes: this makes them the step mean's
        grad_norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), a.grad_clip if a.grad_clip > 0 else float("inf"))
        if not math.isfinite(grad_norm.item()):  # the same in every process (gradients are all-reduced)
            fail(f"step {step}: gradient norm {grad_norm.item()}; nothing written; try a lower --learning-rate")
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % a.log_interval == 0 or step == a.max_steps:
            step_loss = loss.detach()
            if ddp:
                dist.all_reduce(step_loss)
            log(f"step {step} loss {step_loss.item():.4f} lr {lr:.3g} grad_norm {grad_norm.item():.3f} "
                f"({(time.time() - t0) / step:.3f} s/step)", flush=True)
        if step % a.eval_interval == 0 or step == a.max_steps:
            val_loss = evaluate()
            log(f"step {step} val loss {val_loss:.4f}", flush=True)

    if rank == 0:
        state = raw.state_dict()
        state["lm_head.weight"] = state["transformer.wte.weight"]  # tied, should the input file hold it
        write_hf_dir(a, config, {k: state[k] for k in tensors}, st_meta, val_loss=val_loss, rows=a.max_steps * global_batch,
                     seq_len=meta["seqLen"], world=world)
    if ddp:  # leave together, skipping the teardown: torch 1.13's gloo can deadlock destroying its process
        dist.barrier()  # group at exit (a worker thread freeing a tensor waits for the GIL the destructor holds)
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
