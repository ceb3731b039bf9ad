"""Extractive question answering (SQuAD v1.1 and v2): question + context -> the answer's span in the context.

Every split becomes windows (spans.py) labelled with the answer's first and last token (the [CLS] position when the
answer is not in the window, or the question has none). Evaluation scores windows batch by batch: each batch of
logits is reduced to a few candidate spans at once (SpanMetrics), so memory does not grow with the eval set's logits,
and the windows of a question are merged into one answer scored with the official SQuAD exact match and F1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import datasets
from transformers import AutoModelForQuestionAnswering, EvalPrediction, PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.data.cache import cache_key, cached_map, split_key, tokenizer_fingerprint
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import QuestionAnsweringTask
from nlp_transfer.tasks import qa_report
from nlp_transfer.tasks.base import PreparedTask
from nlp_transfer.tasks.input_kinds import QUESTIONS, InputKind
from nlp_transfer.tasks.metrics import squad_metrics
from nlp_transfer.tasks.predictions import Decoder, ModelFacts, Row, echo
from nlp_transfer.tasks.results import TaskResults
from nlp_transfer.tasks.spans import (
    NO_OFFSET,
    NULL_INDEX,
    Answer,
    AnswerMerger,
    answer_tokens,
    as_numpy,
    best_spans,
    context_room,
    null_score,
    question_lengths,
    windows,
)

# Why a question cannot train. Counted per split and reported; an eval question skipped for a long question still
# counts, as unanswered (the model could not read it), so the scores stay comparable with the official script.
EMPTY = "an empty question or context"
NO_VALID_ANSWER = "no answer whose text matches the context at answer_start"
NO_ANSWER = "no answer (unanswerable questions are off: task.unanswerable)"
LONG_QUESTION = "a question that leaves no room for the context within task.max_length"


@dataclass(frozen=True)
class Question:
    """One row, checked: the answers kept are those whose text is found at answer_start."""

    question: str
    context: str
    answers: list[tuple[str, int]]  # (text, start character) of the answers that label windows
    gold: list[str]  # every answer text, for exact match and F1
    problem: str | None  # why the row cannot train, or None

    @property
    def dropped_answers(self) -> int:
        """Answers whose text does not match the context at answer_start."""
        return len(self.gold) - len(self.answers)


class QuestionAnswering:
    auto_model_class: ClassVar[Any] = AutoModelForQuestionAnswering
    peft_task_type: ClassVar[str] = "QUESTION_ANS"
    pipeline_tag: ClassVar[str] = "question-answering"
    pooled_features: ClassVar[bool] = False  # every token's logits matter: nothing to pool and cache
    predict_example: ClassVar[str] = '--question "..." --context "..."'
    # Answer positions count tokens from the left; padding on the left would shift them batch by batch. The
    # tokenizer is loaded so (train.pipeline), never changed here: it is shared, and saved with the model.
    padding_side: ClassVar[str | None] = "right"

    results: ClassVar[TaskResults] = qa_report  # its baseline, view, usage example and card lines
    inputs: ClassVar[InputKind] = QUESTIONS  # what its model reads and returns; export checks it on samples
    corrects_label_prior: ClassVar[bool] = False  # an adapted model's label_prior.json shifts its logits
    does: ClassVar[str] = "answers questions about"  # what its model does with texts, for messages

    @staticmethod
    def decoder(facts: ModelFacts) -> Decoder:
        return answer_rows

    def __init__(self, config: QuestionAnsweringTask) -> None:
        self.config = config

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        config = self.config
        notes: list[str] = []
        if tokenizer.padding_side != self.padding_side:  # the caller loads it so (load_tokenizer's padding_side)
            raise ValueError(
                f"question answering needs a tokenizer that pads on the {self.padding_side}, not the "
                f"{tokenizer.padding_side}: load it with padding_side='{self.padding_side}'"
            )
        for name, split in data.splits.items():
            self._check_columns(split, name, data)
        allow_null = self._allow_null(data, notes)
        for name, split in data.splits.items():
            self._count_problems(split, name, data, tokenizer, allow_null, notes)

        key = {
            "task": "qa",
            "columns": [config.question, config.context, config.answers],
            "max_length": config.max_length,
            "stride": config.stride,
            "allow_null": allow_null,
            "pad_to_max_length": pad_to_max_length,
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "layout": 1,  # bump when the window columns change
        }
        tokenized = datasets.DatasetDict()
        hits, keys = {}, {}
        for name, split in data.splits.items():
            training = name == "train"

            def tokenize(batch: dict[str, list[Any]], indices: list[int], training: bool = training) -> dict[str, Any]:
                return self._windows(batch, indices, tokenizer, allow_null, pad_to_max_length, training)

            keys[name] = cache_key(split_key(data, name), {**key, "training": training})
            tokenized[name], hits[name] = cached_map(
                split,
                tokenize,
                key=keys[name],
                description=f"Windowing {name}",
                with_indices=True,
            )
        windows_per_split = ", ".join(f"{n} {len(s):,}" for n, s in tokenized.items())
        notes.append(f"windows of {config.max_length} tokens (stride {config.stride}): {windows_per_split}")

        def metrics_for(dataset: datasets.Dataset) -> SpanMetrics:
            return SpanMetrics(dataset, config, allow_null)

        return PreparedTask(
            splits=tokenized,
            model_kwargs={},
            batch_metrics_for=metrics_for,
            notes=notes,
            cache_hits=hits,
            keys=keys,
            # "auto" resolved from the data: predict must know whether "no answer" is allowed (TASK_FILE)
            resolved={"unanswerable": allow_null},
        )

    # ---- checking rows --------------------------------------------------------------------------------------

    def _check_columns(self, split: datasets.Dataset, name: str, data: LoadedData) -> None:
        config = self.config
        for field, column in (("question", config.question), ("context", config.context), ("answers", config.answers)):
            if column not in split.column_names:
                raise UserError(
                    f"{_where(name, data)}: column '{column}' (task.{field}) not found"
                    f"{did_you_mean(column, split.column_names)}; columns are: {', '.join(split.column_names)}. "
                    f"Fix task.{field}"
                )

    def _allow_null(self, data: LoadedData, notes: list[str]) -> bool:
        if self.config.unanswerable != "auto":
            return bool(self.config.unanswerable)
        unanswered = sum(not answer_pairs(a) for a in data.splits["train"][self.config.answers])
        if unanswered:
            notes.append(
                f"train: {unanswered} questions have no answer: SQuAD v2 style, the model may answer 'no answer' "
                "(task.unanswerable: false skips them instead)"
            )
        return unanswered > 0

    def _question(self, row: dict[str, Any], allow_null: bool, question_tokens: int, tokenizer: Any) -> Question:
        config = self.config
        question, context = row[config.question], row[config.context]
        if not (isinstance(question, str) and question.strip() and isinstance(context, str) and context.strip()):
            return Question(str(question or ""), str(context or ""), [], [], EMPTY)
        given = answer_pairs(row[config.answers])
        answers = [(t, start) for t, start in given if t and start >= 0 and context[start : start + len(t)] == t]
        problem = None
        if given and not answers:
            problem = NO_VALID_ANSWER
        elif not given and not allow_null:
            problem = NO_ANSWER
        elif context_room(tokenizer, question_tokens, config.max_length) <= config.stride:
            problem = LONG_QUESTION
        return Question(question, context, answers, [text for text, _ in given], problem)

    def _questions(self, batch: dict[str, list[Any]], tokenizer: Any, allow_null: bool) -> list[Question]:
        config = self.config
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        lengths = question_lengths(tokenizer, [str(r[config.question] or "").lstrip() for r in rows])
        return [self._question(r, allow_null, n, tokenizer) for r, n in zip(rows, lengths, strict=True)]

    def _count_problems(
        self, split: datasets.Dataset, name: str, data: LoadedData, tokenizer: Any, allow_null: bool, notes: list[str]
    ) -> None:
        """Rows that cannot train are skipped and counted, never silently; a split with no usable row fails."""
        columns = [self.config.question, self.config.context, self.config.answers]
        questions = self._questions(split.select_columns(columns).to_dict(), tokenizer, allow_null)
        problems = Counter(q.problem for q in questions if q.problem)
        dropped = sum(q.dropped_answers for q in questions)
        if sum(problems.values()) == len(questions):
            reason, count = problems.most_common(1)[0]
            raise UserError(
                f"{_where(name, data)}: no usable question ({count} of {len(questions)} have {reason}); "
                + FIXES[reason]
            )
        for reason, count in problems.items():
            what = "skipped" if name == "train" else SCORED_AS[reason]
            notes.append(f"{name}: {what} {count} of {len(questions)} questions with {reason}")
        if dropped:
            notes.append(
                f"{name}: ignored {dropped} answers whose text does not match the context at answer_start "
                "(the question's other answers are kept)"
            )

    # ---- windows ---------------------------------------------------------------------------------------------

    def _windows(
        self,
        batch: dict[str, list[Any]],
        indices: list[int],
        tokenizer: Any,
        allow_null: bool,
        pad_to_max_length: bool,
        training: bool,
    ) -> dict[str, list[Any]]:
        """Windows of every question with labels, plus what evaluation needs: which question, its context and gold
        answers, the tokens' character offsets. Training keeps only questions without a problem; evaluation scores
        every question it can (SCORED_AS), a too-long question as one window without context tokens."""
        config = self.config
        questions = self._questions(batch, tokenizer, allow_null)
        windowed = [i for i, q in enumerate(questions) if q.problem is None or (not training and q.problem in WINDOWED)]
        found = windows(
            tokenizer,
            [questions[i].question for i in windowed],
            [questions[i].context for i in windowed],
            max_length=config.max_length,
            stride=config.stride,
        )
        produced = [(windowed[w.example], w.encoding, w.offsets) for w in found]
        if not training:
            for i, q in enumerate(questions):
                if q.problem == LONG_QUESTION:  # the question alone, truncated: no context token, so no answer
                    encoding = dict(tokenizer(q.question, truncation=True, max_length=config.max_length))
                    produced.append((i, encoding, [NO_OFFSET] * len(encoding["input_ids"])))
            produced.sort(key=lambda item: item[0])  # windows in question order
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
        rows: dict[str, list[Any]] = {name: [] for name in names}
        rows |= {"start_positions": [], "end_positions": []}
        # For evaluation: which question (its row in the split), its context and gold texts, the token offsets.
        rows |= {"question_index": [], "context": [], "gold": [], "offsets": []}
        for i, encoding, offsets in produced:
            q = questions[i]
            start, end = (NULL_INDEX, NULL_INDEX)
            if q.answers:
                text, start_char = q.answers[0]
                start, end = answer_tokens(offsets, start_char, start_char + len(text))
            if pad_to_max_length:
                encoding = dict(tokenizer.pad(encoding, padding="max_length", max_length=config.max_length))
                offsets = list(offsets) + [NO_OFFSET] * (config.max_length - len(offsets))
            for name in names:
                rows[name].append(list(encoding[name]))
            rows["start_positions"].append(start)
            rows["end_positions"].append(end)
            rows["question_index"].append(indices[i])
            rows["context"].append(q.context)
            rows["gold"].append(q.gold)
            rows["offsets"].append([list(o) for o in offsets])
        return rows


# Evaluation scores a question with a problem when it can: text answers are what EM/F1 compare.
SCORED_AS = {
    EMPTY: "skipped (not scored)",
    NO_VALID_ANSWER: "scored on the answer texts (no position label)",
    NO_ANSWER: "scored as unanswerable",
    LONG_QUESTION: "scored as unanswered",
}
WINDOWED = {
    NO_VALID_ANSWER,
    NO_ANSWER,
}  # evaluated on windows like any question; LONG_QUESTION gets one without context

FIXES = {
    EMPTY: "fill the question and context columns",
    NO_VALID_ANSWER: "answer_start must be the character offset of the answer text in the context (0-based)",
    NO_ANSWER: "set task.unanswerable: true, or check task.answers",
    LONG_QUESTION: "raise task.max_length or lower task.stride",
}


class SpanMetrics:
    """compute_metrics for evaluation batch by batch (TrainingArguments.batch_eval_metrics).

    The evaluation loop feeds windows in dataset order; each batch of start/end logits (B, T) is cut down to the
    n best spans per window right away, and the final call merges each question's windows and scores the answers.
    """

    def __init__(self, dataset: datasets.Dataset, config: QuestionAnsweringTask, allow_null: bool) -> None:
        self.dataset = dataset.select_columns(["question_index", "context", "gold", "offsets"])
        self.config = config
        self.merger = AnswerMerger(n_best=config.n_best, allow_null=allow_null, null_threshold=config.null_threshold)
        self.golds: dict[int, list[str]] = {}
        self.seen = 0

    def __call__(self, prediction: EvalPrediction, compute_result: bool = True) -> dict[str, float]:
        # transformers passes compute_result=True on the last batch (and a whole set when not batching).
        start_logits, end_logits = (as_numpy(x) for x in prediction.predictions[:2])  # (B, T) each
        rows = self.dataset[self.seen : self.seen + len(start_logits)]
        self.seen += len(start_logits)
        for b, question in enumerate(rows["question_index"]):
            offsets = rows["offsets"][b]
            spans = best_spans(
                start_logits[b],
                end_logits[b],
                offsets,
                n_best=self.config.n_best,
                max_answer_length=self.config.max_answer_length,
            )
            self.merger.add(question, rows["context"][b], spans, null_score(start_logits[b], end_logits[b]))
            self.golds[question] = rows["gold"][b]
        if not compute_result:
            return {}
        answers = self.merger.answers()
        order = sorted(answers)
        return squad_metrics([answers[i].text or "" for i in order], [self.golds[i] for i in order])


def answer_pairs(answers: Any) -> list[tuple[str, int]]:
    """(text, start) pairs from the hub layout {text: [...], answer_start: [...]} or a list of {text, answer_start}."""
    if not answers:
        return []
    if isinstance(answers, dict):
        texts, starts = answers.get("text") or [], answers.get("answer_start") or []
        if isinstance(texts, str):  # one answer written without a list
            texts, starts = [texts], [starts]
        return [(str(t), int(s)) for t, s in zip(texts, starts, strict=False) if t is not None and s is not None]
    return [(str(a["text"]), int(a["answer_start"])) for a in answers if isinstance(a, dict)]


def _where(split: str, data: LoadedData) -> str:
    return f"data.{split} ({', '.join(data.sources.get(split, ['held out from train']))})"


def answer_rows(items: list[Row], answers: list[Answer]) -> list[Row]:
    """Each question with its answer span (text, score, character offsets); the passage is not repeated."""
    return [
        echo(item, ("context",)) | {"answer": a.text, "score": round(a.score, 6), "start": a.start, "end": a.end}
        for item, a in zip(items, answers, strict=True)
    ]
