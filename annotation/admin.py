"""Admin: researchers can build or fix a study by hand (items, pre-assignments, open/close)."""

from django.contrib import admin

from annotation.models import Assignment, Item, Rating, Study


class ItemInline(admin.TabularInline):
    model = Item
    extra = 1
    fields = ["external_id", "background", "question", "answer", "source", "is_attention_check"]
    show_change_link = True


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "raters_per_item", "is_open", "created_at"]
    list_filter = ["is_open"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["raters"]
    readonly_fields = ["created_at"]
    inlines = [ItemInline]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "study", "source", "completed_count", "leased_count"]
    list_filter = ["study", "source", "is_attention_check"]
    search_fields = ["external_id", "background", "question", "answer"]
    readonly_fields = ["completed_count", "leased_count"]
    raw_id_fields = ["conversation"]


class RatingInline(admin.TabularInline):
    model = Rating
    extra = 0


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "rater", "status", "time_spent_ms", "completed_at"]
    list_filter = ["status", "item__study"]
    raw_id_fields = ["item", "rater"]
    inlines = [RatingInline]
