"""Rewards for the `grpo` and `ppo` stages (step 6 of a run: the stage builds its trainer with these).

Each entry of ``stage.reward_funcs`` is one of:
- a built-in function by name (`tuneforge.rewards.builtin`: exact_match, contains, format, length);
- a user's function, ``FILE.py:FUNCTION`` (the file is loaded by path, relative to the current folder);
- ``model: FOLDER``, a reward model (AutoModelForSequenceClassification with one label: a model folder,
  or the run folder of an `rm` run), frozen;
- ``judge: URL-or-FOLDER``, an LLM judge scoring each answer from 0 to 10 (`tuneforge.rewards.judge`).

`tuneforge.rewards.config` holds the config entry (light: stage configs import it),
`tuneforge.rewards.build` turns entries into TRL's reward functions, `tuneforge.rewards.reward_model`
loads reward models. Every Python reward goes through `build.guard`, which turns a function that raises, returns the wrong
number of rewards or something that is not a number into a TrainingError naming the function and
the sample, instead of a traceback from deep inside TRL.
"""
