from django.contrib import admin

from modeling.models import Conversation, Dataset, GenerationRun, TrainingRun


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "n_train", "n_val", "created_at"]
    list_filter = ["status"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "base_model", "status", "progress", "step", "created_at"]
    list_filter = ["status"]


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "base_model", "status", "n_done", "n_total", "created_at"]
    list_filter = ["status"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["record_id", "run", "parse_ok"]
    list_filter = ["parse_ok", "run"]
    search_fields = ["background", "question", "answer"]
