"""`likeness receipt verify` for output release receipts: the receipt's fields, and (with --file)
whether a file is byte for byte the output that was released."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.output_files import file_sha256
from bot.receipts import OUTPUT_RECEIPT_TYPE, ReceiptError, check_output_file


def check_release(receipt: dict[str, Any], output_file: Path | None) -> dict[str, Any]:
    """What a verified release receipt says; ReceiptError when `output_file` is not the released file."""
    if receipt.get("type") != OUTPUT_RECEIPT_TYPE:
        raise ReceiptError("--file checks an output release receipt; this receipt is another kind")
    if output_file is not None:
        try:
            found = file_sha256(output_file)
        except OSError as error:
            raise ReceiptError(f"cannot read {output_file}: {error.strerror or error}") from None
        check_output_file(receipt, found)
    return {
        "valid": True,
        "type": OUTPUT_RECEIPT_TYPE,
        "output_id": receipt["output"].get("id"),
        "output_sha256": receipt["output"]["sha256"],
        "grant_id": receipt["grant"]["id"],
        "terms_hash": receipt["terms_hash"],
        "released_at": receipt.get("released_at"),
        "file_checked": output_file is not None,
    }


def release_summary(release: dict[str, Any]) -> str:
    """The human line of a valid release receipt."""
    checked = "the file matches" if release["file_checked"] else "no file checked (give --file)"
    return (
        f"release receipt valid: output {release['output_sha256'][:16]}… released under grant "
        f"{release['grant_id']} at {release['released_at']}; {checked}"
    )
