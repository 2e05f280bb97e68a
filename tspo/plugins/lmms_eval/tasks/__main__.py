from tspo.plugins.lmms_eval.tasks import TASKS_DIR

print(TASKS_DIR)
