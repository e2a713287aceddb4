"""The AI decision layer: a decision point turns into one validated, audited structured object, or into a
clean escalation to a human. The model helps decide; deterministic code validates and executes.

* :mod:`interlock.ai.decision`: what a decision point declares (prompt, output schema, threshold, tiers,
  allowed actions) and what deciding returns.
* :mod:`interlock.ai.context`: the four context layers (system, domain, session, request) with budgets.
* :mod:`interlock.ai.providers`: the model port, the offline provider; :mod:`interlock.ai.openai_provider`
  is the only module that imports ``openai``, and only when a model is called.
* :mod:`interlock.ai.runner`: three tiers as one step (retry with the error fed back, a simpler model,
  a human), every attempt on the run's timeline, metrics, the per-run budget.
"""
