"""The algorithm's building blocks, no method in them: tasks and start states (``tasks``),
envs stepped together (``envpool``), episodes (``rollout``), group-relative advantages
(``advantages``), the gates (``gate``), the network (``policies``) and every setting
(``config``). Imports only ``hapo_rl.common`` and ``hapo_rl.envs``."""
