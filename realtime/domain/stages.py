"""The stages of the video pipeline, in order, and what each is called on the page."""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "url_validation",
    "metadata_extraction",
    "transcript_generation",
    "content_analysis",
    "mindmap_generation",
    "data_storage",
    "indexing",
    "completed",
)
WORK_STAGES: tuple[str, ...] = STAGES[:-1]
STAGE_INDEX = {s: i for i, s in enumerate(STAGES)}

STAGE_MESSAGES: dict[str, str] = {
    "url_validation": "Checking the video link",
    "metadata_extraction": "Reading the video's details",
    "transcript_generation": "Generating transcript",
    "content_analysis": "Analysing the content",
    "mindmap_generation": "Building the mind map",
    "data_storage": "Saving the results",
    "indexing": "Indexing for search",
    "completed": "Done",
}
