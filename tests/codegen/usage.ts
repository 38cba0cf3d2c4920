// What the generated types promise a frontend, checked by `tsc --strict`: the scalar mappings
// (DateTime -> string, Upload -> File), required variables, enums as string unions, nullability.
import type { ResultOf, VariablesOf } from "@graphql-typed-document-node/core";
import { MeAndHistory, MessageEvents, SendText, UploadVoice } from "./operations";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

type History = ResultOf<typeof MeAndHistory>;
type Message = History["history"]["edges"][number]["node"];
type Event = ResultOf<typeof MessageEvents>["messageEvents"];

expectType<Equal<History["me"]["createdAt"], string>>();
expectType<Equal<Message["sentAt"], string>>();
expectType<Equal<Message["kind"], "TEXT" | "VOICE">>();
expectType<Equal<Message["transcriptionStatus"], "DONE" | "FAILED" | "PENDING" | null>>();
expectType<Equal<NonNullable<Message["audio"]>["url"], string>>();
expectType<Equal<Event["type"], "CREATED" | "UPDATED" | "DELETED">>();
expectType<Equal<VariablesOf<typeof UploadVoice>["file"], File>>();
expectType<Equal<ResultOf<typeof SendText>["sendMessage"]["clientId"], string | null>>();

export const send: VariablesOf<typeof SendText> = {
  input: { receiverId: "u1", text: "hello", clientId: "c-1" },
};
export const toGroup: VariablesOf<typeof SendText> = { input: { conversationId: "c1", text: "hello all" } };
// @ts-expect-error text is a String
export const notText: VariablesOf<typeof SendText> = { input: { conversationId: "c1", text: 42 } };
// @ts-expect-error partnerId is required
export const noPartner: VariablesOf<typeof MeAndHistory> = { last: 30 };
// @ts-expect-error an Upload is a File, not a string
export const notAFile: VariablesOf<typeof UploadVoice> = { file: "voice.webm" };

export function olderPageCursor(page: History): string | null | undefined {
  return page.history.pageInfo.hasPreviousPage ? page.history.pageInfo.startCursor : undefined;
}

export function onEvent(event: Event): string {
  // @ts-expect-error no such field was selected
  void event.message.audio;
  return event.type === "CREATED" ? `${event.message.senderId}: ${event.message.text}` : event.message.id;
}
