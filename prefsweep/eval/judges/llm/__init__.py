"""The LLM judge (``eval.judge.type: llm``), one concern a module.

``settings`` (what changes a verdict, how requests are sent), ``budget`` (the guard
``eval.judge.max_api_calls``), ``format`` (FastChat's prompts, verdict parsing, records),
``cache`` (the request cache and its claims across processes), ``client`` (HTTP, retries, the
request deadline), ``pool`` (answering a job's requests concurrently), ``judge`` (the job,
registered as :class:`prefsweep.eval.judges.llm.judge.LlmJudge`). Design: docs/design/llm-judge.md.
``python -m prefsweep.eval.judges.llm`` prints the client settings a hand run needs.
"""
