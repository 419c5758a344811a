/** The public library API of gptmed: each stage's functions, typed. */
export { UserError } from './common/errors.js';
