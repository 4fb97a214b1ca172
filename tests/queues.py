"""The follow-through's queues in Azurite, worked by the app's real queue functions (tests only)."""

from __future__ import annotations

import json
from typing import Any

from azure.functions.meta import Datum
from azure.functions.queue import QueueMessageInConverter

from emulator.azurite import dev_credential


class Queues:
    """The follow-through's queue and its poison queue in Azurite, and the real queue functions run on them.

    `work()` does what the Functions host's queue listener does for one poll (receive a batch, run the
    function per message with a real `func.QueueMessage`, delete on success, make a failed message
    visible again, move it to `<queue>-poison` on its maxDequeueCount-th failure); devhost's listener
    does the same continuously across processes.
    """

    def __init__(self, endpoint: str, name: str, ca: str, functions: dict[str, Any]) -> None:
        from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

        def client(queue: str) -> QueueClient:
            return QueueClient(
                endpoint,
                queue,
                credential=dev_credential(),
                connection_verify=ca,
                message_encode_policy=BinaryBase64EncodePolicy(),
                message_decode_policy=BinaryBase64DecodePolicy(),
            )

        self.name = name
        self.main, self.poison = client(name), client(f"{name}-poison")
        for queue in (self.main, self.poison):
            queue.create_queue()
        self.functions = functions

    def peek(self, poison: bool = False) -> list[dict[str, Any]]:
        queue = self.poison if poison else self.main
        return [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]

    def count(self, poison: bool = False) -> int:
        queue = self.poison if poison else self.main
        return int(queue.get_queue_properties().approximate_message_count or 0)

    def work(self, *, poison: bool = False, max_dequeue: int = 5, lease: int = 60) -> list[str]:
        """One batch: returns 'ok' or the failure per message."""
        queue = self.poison if poison else self.main
        function = self.functions["capture_report_poison" if poison else "capture_report"].get_user_function()
        outcomes = []
        batch = list(
            next(queue.receive_messages(messages_per_page=32, visibility_timeout=lease).by_page(), [])
        )
        for message in batch:
            msg = QueueMessageInConverter.decode(
                Datum(message.content, "bytes"),
                trigger_metadata={
                    "Id": Datum(message.id, "string"),
                    "DequeueCount": Datum(str(message.dequeue_count), "json"),
                    "PopReceipt": Datum(message.pop_receipt, "string"),
                },
            )
            try:
                function(msg)
            except Exception as exc:
                outcomes.append(type(exc).__name__)
                if (message.dequeue_count or 0) >= max_dequeue and not poison:
                    self.poison.send_message(message.content)
                    queue.delete_message(message)
                else:
                    queue.update_message(message, visibility_timeout=0)
                continue
            queue.delete_message(message)
            outcomes.append("ok")
        return outcomes

    def drain(self, rounds: int = 10) -> list[str]:
        """Work the queue (and the poison queue) until both are empty."""
        outcomes: list[str] = []
        for _ in range(rounds):
            batch = self.work() + self.work(poison=True)
            outcomes += batch
            if not batch:
                break
        return outcomes
