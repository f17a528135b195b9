"""The encoder-decoder as the task contract sees it (pipelines.tasks.contract): translation and
summarization both register it; which of the two runs comes from ``cfg.task``."""

from __future__ import annotations

from pipelines.tasks.contract import TaskModel
from pipelines.tasks.seq2seq import export, model, scoring
from pipelines.tasks.seq2seq.model import check_source_gain


class Seq2SeqModel(TaskModel):
    """An encoder-decoder that generates the target text (pipelines.tasks.contract)."""

    generates_text = True
    PRETRAIN_KEYS = model.PRETRAIN_KEYS
    FINETUNE_KEYS = model.FINETUNE_KEYS
    FIGURE_NAME = model.FIGURE_NAME
    ORT_DECODING = export.ORT_DECODING
    build_tokenizers = staticmethod(model.build_tokenizers)
    encode = staticmethod(model.encode)

    @staticmethod
    def token_lengths(records, tokenizers, cfg):
        src, tgt = model._fields(cfg)
        lengths = {}
        for key, field, tok in (("max_length", src, model.source_tokenizer(tokenizers)),
                                ("max_target_length", tgt, model.target_tokenizer(tokenizers))):
            ids = tok([r[field] for r in records], truncation=False, verbose=False,
                      return_attention_mask=False)["input_ids"]
            lengths[key] = [len(x) for x in ids]
        return lengths
    pretrain_datasets = staticmethod(model.pretrain_datasets)
    pretrain_collator = staticmethod(model.pretrain_collator)
    build_pretrain_model = staticmethod(model.build_pretrain_model)
    build_model = staticmethod(model.build_model)
    collator = staticmethod(model.collator)
    training_diagnostics = staticmethod(model.training_diagnostics)
    trainer_class = staticmethod(model.trainer_class)
    eval_dataset = staticmethod(model.eval_dataset)
    compute_metrics_fn = staticmethod(model.compute_metrics_fn)
    predict_texts = staticmethod(model.predict_texts)
    evaluate_model = staticmethod(model.evaluate_model)
    resample_scorer = staticmethod(scoring.resample_scorer)
    baseline_result = staticmethod(scoring.baseline_result)
    test_outputs = staticmethod(scoring.test_outputs)
    result_from_outputs = staticmethod(scoring.result_from_outputs)
    prediction_rows = staticmethod(model.prediction_rows)
    plot_rows = staticmethod(model.plot_rows)
    figure = staticmethod(model.figure)
    export_onnx = staticmethod(export.export_onnx)
    onnx_files = staticmethod(export.onnx_files)
    ort_model = staticmethod(export.ort_model)
    build_student = staticmethod(export.build_student)
    ort_latency_cfg = staticmethod(export.ort_latency_cfg)
    save_decoding_settings = staticmethod(model.save_decoding_settings)
    serving_params = staticmethod(model.serving_params)

    def check_trained(self, report: dict, cfg) -> None:
        check_source_gain(report, cfg.finetune.min_source_gain)
