/** The part of sentencepiece-js (C++ SentencePiece compiled to wasm) that gptmed uses. */
declare module 'sentencepiece-js' {
  interface WasmStatus {
    ToString(): string;
    delete(): void;
  }
  interface WasmProcessor {
    status(): WasmStatus;
  }
  export class SentencePieceProcessor {
    /** Set by load(); the embind processor. */
    processor: WasmProcessor;
    /** Reads the file and loads it; errors are swallowed (check processor.status()). */
    load(path: string): Promise<void>;
    encodeIds(text: string): number[];
    encodePieces(text: string): string[];
    decodeIds(ids: number[]): string;
  }
  const spm: { SentencePieceProcessor: typeof SentencePieceProcessor };
  export default spm;
}
