"""RLAdapter / AdaRefiner online: the teacher LM's LoRA adapter, fine-tuned on what the student succeeded with.

| module      | what                                                                            |
| ----------- | ------------------------------------------------------------------------------- |
| ``data``    | the held-out split and the (prompt, plan or analysis) text of a training pair     |
| ``finetune``| LoRA fine-tuning with peft (``LoraFineTuner``)                                    |
| ``trainer`` | the named Ray actor that fine-tunes while RL runs (``start_adapter_trainer``)     |
| ``versions``| ``adapters/v<N>/`` on disk, the pointer in service, the base-model check          |
| ``analyst`` | ``adapter.role=analyst``: the analyst LM whose analysis goes into the teacher's prompt |

The pairs themselves are built by the feedback actor (``llmrl.feedback.pairs``); the teacher service hot-loads
new versions (``llmrl.teacher.service``). ``latest_adapter(run_or_checkpoint_dir)`` is the public way to find a
run's adapter. Importing this package imports neither torch nor ray.
"""

from llmrl.adapter.versions import AdapterError, latest_adapter

__all__ = ["AdapterError", "latest_adapter"]
