// scripts/build.mjs loads .css files as text; the app adopts them as a constructed stylesheet.
declare module '*.css' {
  const text: string;
  export default text;
}
