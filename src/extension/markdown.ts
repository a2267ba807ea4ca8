/**
 * Text from elsewhere (flespi: channel names, error reasons; a sink's server; a settings file) made
 * inert inside a Markdown tooltip: no link, image, theme icon (`$(…)`), emphasis, code span, heading,
 * table or HTML can come out of it, and control characters and line breaks become spaces so it cannot
 * start a block of its own. Every character still shows as itself (CommonMark renders a backslash-escaped
 * punctuation character literally). `( ) . - + : / =` are left alone: without `[` `]` `$` and without a
 * line of its own they form nothing, and paths and URLs stay readable.
 */
export function escapeMarkdown(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being replaced
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/[\\`*_{}[\]<>#|!$~&"']/g, '\\$&');
}
