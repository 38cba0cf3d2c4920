// Real Chattergram operations, written as a frontend writes them with graphql-codegen's
// client preset: `graphql()` from the generated gql/ returns typed documents.
import { graphql } from "./gql";

export const MeAndHistory = graphql(`
  query MeAndHistory($partnerId: ID!, $last: Int, $before: String) {
    me { id username createdAt }
    history(partnerId: $partnerId, last: $last, before: $before) {
      edges {
        cursor
        node { id kind senderId text sentAt transcriptionStatus audio { url durationSeconds } }
      }
      pageInfo { hasPreviousPage startCursor }
    }
  }
`);

export const SendText = graphql(`
  mutation SendText($input: SendMessageInput!) {
    sendMessage(input: $input) { id clientId text sentAt }
  }
`);

export const UploadVoice = graphql(`
  mutation UploadVoice($file: Upload!) {
    uploadAudio(file: $file) { id mimeType sizeBytes durationSeconds url }
  }
`);

export const MessageEvents = graphql(`
  subscription MessageEvents {
    messageEvents { type message { id senderId receiverId text sentAt transcriptionStatus } }
  }
`);
