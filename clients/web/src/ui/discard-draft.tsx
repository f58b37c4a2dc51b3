// "Discard draft": for a draft only its author sees (an observation, a group session).
import type { DocHandle } from "@automerge/automerge-repo/slim";
import type { RecordStore } from "../records";
import { navigate } from "../router";
import type { RecordDoc } from "../types";
import { ConfirmButton } from "./confirm-button";

export function DiscardDraft({ store, handle }: { store: RecordStore; handle: DocHandle<RecordDoc> }) {
  if (!store.isMyDraft(handle.doc())) return null;
  return (
    <ConfirmButton
      label="Discard draft"
      question="Discard this draft?"
      consequence="It is deleted from this device, from your other devices and from the server (now, or when this device is next online). Nobody else has seen it. It cannot be undone."
      yes="Discard now"
      secondary
      onConfirm={() => {
        store.discard(handle);
        navigate("#/");
      }}
    />
  );
}
