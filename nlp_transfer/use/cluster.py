"""Unsupervised transfer: embed an unlabelled corpus with a pre-trained or fine-tuned encoder, cluster it with k-means.

Embeddings follow all-MiniLM-L6-v2's sentence-transformers convention: the mean of the last hidden states over the
real tokens, L2-normalised, so Euclidean k-means on them ranks points as cosine similarity does. A label column, when
given, never touches the clustering; it only scores it (NMI, ARI, purity) and describes each cluster.
"""

from __future__ import annotations

import inspect
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.core.files import check_output_folder
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.data.assets import default_data_root, resolve_model
from nlp_transfer.data.loading import load_extra_split
from nlp_transfer.data.readers import COMMAND_NAMES, SUFFIX_FORMATS
from nlp_transfer.runfolder.folder import METRICS_FILE, RECIPE_FILE, STATUS_FILE, RunFolder, default_run_dir
from nlp_transfer.use.trained import open_trained

SILHOUETTE_SAMPLE = 5_000  # silhouette costs O(n^2); a seeded sample of this size estimates it closely
N_INIT = 10  # k-means restarts from seeded initial centroids; the lowest-inertia solution is kept


@dataclass
class ClusterOptions:
    model: str  # hub id, model folder, or a complete run folder
    data: str  # file path, name under the data root, or hub dataset id (its train split)
    k: int | None = None
    text: str = "text"
    label: str | None = None
    columns: list[str] | None = None  # names for a header-less csv/tsv
    delimiter: str | None = None  # csv/tsv field delimiter (default ',' for csv, tab for tsv)
    encoding: str = "utf-8"
    max_samples: int | None = None
    max_length: int = 128
    batch_size: int = 32
    examples: int = 5
    seed: int = 42
    out: Path | None = None
    overwrite: bool = False
    device: str = "auto"  # where and in which precision the encoder runs (core.hardware)
    precision: str = "auto"


@dataclass
class Corpus:
    texts: list[str]
    labels: list[str] | None
    rows: list[int]  # 0-based row of each text in the file, kept through --max-samples
    source: str


def run_cluster(options: ClusterOptions) -> tuple[Path, dict[str, Any]]:
    """Check everything, embed, cluster, score, write. Returns the output folder and the metrics."""
    out = options.out or default_run_dir("runs", f"cluster-{Path(options.data).stem}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not options.overwrite)):
        raise UserError(
            f"--output-dir {out} exists and is not an empty folder; choose another --output-dir (or pass --overwrite)"
        )
    check_output_folder(out, "--output-dir")  # a file above it or an unwritable place, found before the model loads
    runtime = Runtime.choose(options.device, options.precision)
    corpus = read_corpus(options)
    k = choose_k(options.k, corpus, options.label)
    torch.manual_seed(options.seed)
    np.random.seed(options.seed)
    started = time.perf_counter()
    encoder, tokenizer, encoder_name = load_encoder(options.model)
    loaded = time.perf_counter()
    vectors = embed(encoder, tokenizer, corpus.texts, options.max_length, options.batch_size, runtime)  # (N, H)
    embedded = time.perf_counter()

    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=k, n_init=N_INIT, random_state=options.seed).fit(vectors)
    assigned = kmeans.labels_  # (N,)
    distances = kmeans.transform(vectors)[np.arange(len(assigned)), assigned]  # (N,) to the own centroid
    metrics = score(vectors, assigned, corpus.labels, k, float(kmeans.inertia_), options.seed)
    seconds = {"load": loaded - started, "embed": embedded - loaded, "cluster": time.perf_counter() - embedded}
    metrics |= {"encoder": encoder_name, "data": corpus.source, "seed": options.seed, "max_length": options.max_length}
    metrics["runtime"] = runtime.describe()
    metrics["seconds"] = {name: round(value, 2) for name, value in seconds.items()}
    clusters = describe(corpus, assigned, distances, k, options.examples)
    write_outputs(out, corpus, assigned, distances, clusters, metrics)
    return out, metrics


def read_corpus(options: ClusterOptions) -> Corpus:
    """The texts (and labels) of DATA's rows, read as a recipe's data.train is: csv/tsv (header row, or --columns),
    jsonl, a JSON list, or any other file as one text per line (a column named `text`; blank lines skipped)."""
    fmt = SUFFIX_FORMATS.get(Path(options.data).suffix.lower(), "text")
    if options.columns is not None and fmt not in {"csv", "tsv"}:
        raise UserError(
            f"--columns names the columns of a header-less csv/tsv, but {options.data} is {fmt}; drop --columns"
        )
    loaded = load_extra_split(
        options.data,
        split="train",
        field="DATA",
        data_root=default_data_root(),
        base_dir=None,
        columns=options.columns,
        delimiter=options.delimiter,
        encoding=options.encoding,
        names=COMMAND_NAMES,
    )
    dataset, [source] = loaded.splits["train"], loaded.sources["train"]
    found = dataset.column_names
    hint = " (a header-less file needs --columns, e.g. --columns text,label)" if fmt in {"csv", "tsv"} else ""
    for flag, name in (("--text", options.text), ("--label", options.label)):
        if name is not None and name not in found:
            raise UserError(
                f"{flag} '{name}' is not a column of {source}{did_you_mean(name, found)}; "
                f"columns found: {', '.join(found)}{hint}"
            )
    blank_lines = fmt == "text" and source in loaded.file_hashes  # the text builder keeps them as empty rows
    column = {name: dataset[name] for name in (options.text, options.label) if name}
    texts, labels = [], []
    for number, values in enumerate(zip(*column.values(), strict=True), start=1):
        row = dict(zip(column, values, strict=True))
        if missing := [name for name, value in row.items() if value is None]:
            raise UserError(f"DATA {source} row {number} has no '{missing[0]}'; fill it in or drop the row")
        if blank_lines and not str(row[options.text]).strip():
            continue
        texts.append(str(row[options.text]))
        labels.append(str(row[options.label]) if options.label else "")
    chosen = list(range(len(texts)))
    if options.max_samples is not None and options.max_samples < len(texts):
        rng = np.random.default_rng(options.seed)
        chosen = sorted(rng.choice(len(texts), size=options.max_samples, replace=False).tolist())  # file order
    return Corpus([texts[i] for i in chosen], [labels[i] for i in chosen] if options.label else None, chosen, source)


def choose_k(k: int | None, corpus: Corpus, label: str | None) -> int:
    if k is None:
        if corpus.labels is None:
            raise UserError("--k is required without --label; pass the number of clusters, e.g. --k 4")
        k = len(set(corpus.labels))
        given = f"k = {k} (the number of distinct values of --label '{label}'; pass --k to choose)"
    else:
        given = f"--k {k}"
    distinct = len(set(corpus.texts))  # identical texts embed to one point, and k-means needs k distinct points
    if distinct < 2:
        raise UserError(f"DATA {corpus.source} has {distinct} distinct text; clustering needs at least 2")
    if not 2 <= k <= distinct:
        raise UserError(f"{given}: k must be between 2 and {distinct}, the number of distinct texts in {corpus.source}")
    return k


def load_encoder(reference: str) -> tuple[nn.Module, Any, str]:
    """(encoder without a task head, tokenizer, description) from a complete run folder or a model reference."""
    from transformers import AutoModel

    from nlp_transfer.methods.pretrained import load_model, load_tokenizer
    from nlp_transfer.recipe import ModelSpec

    spec = ModelSpec(name=reference)
    path = Path(reference).expanduser()
    if (path / STATUS_FILE).is_file() or (path / RECIPE_FILE).is_file():  # a run folder or a copy of one
        trained = open_trained(path)
        tokenizer = trained.tokenizer()
        recipe = trained.recipe
        name = f"run {path} ({recipe['method']['name']} on {recipe['model']['name']})"
        return task_encoder(trained.load()), tokenizer, name
    asset = resolve_model(reference)
    tokenizer = load_tokenizer(asset, spec)
    return load_model(AutoModel, asset, spec, tokenizer).eval(), tokenizer, f"{reference} ({asset.source})"


def task_encoder(model: Any) -> nn.Module:
    """The encoder inside a trained task model: BertModel, GPT2Model, ... without the head."""
    from transformers import PreTrainedModel

    if hasattr(model, "get_base_model"):  # peft: the task model with its LoRA layers in place (and active)
        model = model.get_base_model()
    elif not isinstance(model, PreTrainedModel):  # a probe's PooledClassifier wraps the task model
        model = model.model
    encoder: nn.Module = model.base_model
    return encoder.eval()


def embed(
    encoder: nn.Module,
    tokenizer: Any,
    texts: list[str],
    max_length: int,
    batch_size: int,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """(N, H) float32 unit vectors: the mean of the last hidden states over the attention mask."""
    from nlp_transfer.methods.features import pool

    runtime = runtime or Runtime.choose()
    encoder = encoder.to(runtime.device)
    accepted = inspect.signature(encoder.forward).parameters  # DistilBERT takes no token_type_ids
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: little padding
    parts = []
    with torch.inference_mode(), runtime.precision.autocast():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            inputs = tokenizer(
                [texts[i] for i in batch], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            ).to(runtime.device)
            hidden = encoder(**{k: v for k, v in inputs.items() if k in accepted}).last_hidden_state  # (B, T, H)
            pooled = pool(hidden.float(), inputs["attention_mask"], "mean")  # (B, H), summed in fp32
            parts.append(nn.functional.normalize(pooled, dim=-1).cpu().numpy())
    vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
    vectors[order] = np.concatenate(parts)  # back to corpus order
    return vectors


def score(
    vectors: np.ndarray, assigned: np.ndarray, labels: list[str] | None, k: int, inertia: float, seed: int
) -> dict[str, Any]:
    from sklearn import metrics

    n = len(assigned)
    silhouette = None
    if 2 <= len(set(assigned.tolist())) <= n - 1:  # undefined for one cluster or one point per cluster
        sample = SILHOUETTE_SAMPLE if n > SILHOUETTE_SAMPLE else None
        silhouette = metrics.silhouette_score(vectors, assigned, metric="cosine", sample_size=sample, random_state=seed)
    result: dict[str, Any] = {"k": k, "n": n, "silhouette": _round(silhouette), "inertia": _round(inertia)}
    if labels is not None:
        majority = sum(Counter(np.array(labels)[assigned == c].tolist()).most_common(1)[0][1] for c in set(assigned))
        result |= {
            "nmi": _round(metrics.normalized_mutual_info_score(labels, assigned)),
            "ari": _round(metrics.adjusted_rand_score(labels, assigned)),
            "purity": _round(majority / n),  # share of texts whose cluster's most common label is their own
        }
    return result


def describe(corpus: Corpus, assigned: np.ndarray, distances: np.ndarray, k: int, examples: int) -> list[dict]:
    """Per cluster: size, the texts closest to the centroid, and the label counts when there are labels."""
    clusters = []
    for cluster in range(k):
        members = np.flatnonzero(assigned == cluster)
        closest = members[np.argsort(distances[members], kind="stable")[:examples]]
        shown = [{"index": corpus.rows[i], "text": corpus.texts[i], "distance": _round(distances[i])} for i in closest]
        entry: dict[str, Any] = {"cluster": cluster, "size": len(members), "examples": shown}
        if corpus.labels is not None:
            entry["labels"] = dict(Counter(corpus.labels[i] for i in members).most_common())
        clusters.append(entry)
    return clusters


def write_outputs(
    out: Path, corpus: Corpus, assigned: np.ndarray, distances: np.ndarray, clusters: list[dict], metrics: dict
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(out)  # each file through a temporary file and a rename: never half-written
    rows = [
        {"index": corpus.rows[i], "text": text, "cluster": int(assigned[i]), "distance": _round(distances[i])}
        | ({"label": corpus.labels[i]} if corpus.labels is not None else {})
        for i, text in enumerate(corpus.texts)
    ]
    folder.write_text("assignments.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    folder.write_json("clusters.json", clusters)
    folder.write_json(METRICS_FILE, metrics)
    folder.write_text("summary.md", summary_markdown(clusters, metrics))


def summary_markdown(clusters: list[dict], metrics: dict) -> str:
    lines = [f"# k-means clusters of {metrics['data']}\n"]
    lines.append(f"Encoder: {metrics['encoder']}; {metrics['n']} texts, k = {metrics['k']}, seed {metrics['seed']}.\n")
    lines += [
        f"{summary_line(metrics)}\n",
        "| cluster | size | labels | closest to the centroid |",
        "|---:|---:|---|---|",
    ]
    for c in clusters:
        labels = ", ".join(f"{name} {count / c['size']:.0%}" for name, count in list(c.get("labels", {}).items())[:3])
        texts = " / ".join(_cell(e["text"]) for e in c["examples"][:3])
        lines.append(f"| {c['cluster']} | {c['size']} | {_cell(labels) or '-'} | {texts} |")
    return "\n".join(lines) + "\n"


def summary_line(metrics: dict[str, Any]) -> str:
    """One line for the terminal and the markdown summary."""
    names = {"silhouette": "silhouette", "nmi": "NMI", "ari": "ARI", "purity": "purity"}
    shown = [f"{name} {metrics[key]:.4f}" for key, name in names.items() if metrics.get(key) is not None]
    return ", ".join([f"k={metrics['k']}", f"n={metrics['n']}", *shown])


def _cell(text: str, width: int = 80) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)
