#!/usr/bin/env node
// The cdaas command: the built CLI (cli/dist, made by `npm install` or `npm run build -w cli`).
import '../dist/main.js';
