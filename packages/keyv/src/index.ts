export { VelaKeyvStore } from "./VelaKeyvStore.js"
