"""A checked patch as the LSP's WorkspaceEdit, with the unified diff as its change annotation."""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from . import patches

ANNOTATION_ID = "cromwell"


def workspace_edit(
    uri: str,
    patch: patches.Patch,
    codec: PositionCodec,
    title: str,
    document_changes: bool,
    create: bool = False,
) -> types.WorkspaceEdit:
    """The patch as a WorkspaceEdit whose change annotation carries the unified diff and asks
    the user to confirm (clients that honour annotations show it before applying)."""
    annotation = types.ChangeAnnotation(
        label=title, needs_confirmation=True, description=patch.diff
    )
    if create:
        edits_ = [
            types.AnnotatedTextEdit(
                range=types.Range(types.Position(0, 0), types.Position(0, 0)),
                new_text=patch.new,
                annotation_id=ANNOTATION_ID,
            )
        ]
        return types.WorkspaceEdit(
            document_changes=[
                types.CreateFile(
                    uri=uri,
                    options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
                    annotation_id=ANNOTATION_ID,
                ),
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=None
                    ),
                    edits=edits_,
                ),
            ],
            change_annotations={ANNOTATION_ID: annotation},
        )
    text_edits = patches.text_edits(patch.old, patch.new, codec)
    if not document_changes:
        return types.WorkspaceEdit(changes={uri: text_edits})
    annotated = [
        types.AnnotatedTextEdit(range=e.range, new_text=e.new_text, annotation_id=ANNOTATION_ID)
        for e in text_edits
    ]
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=patch.version
                ),
                edits=annotated,
            )
        ],
        change_annotations={ANNOTATION_ID: annotation},
    )
