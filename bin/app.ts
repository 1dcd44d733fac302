#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app-builder';

// Entry point of `cdk synth` / `cdk deploy`. The wiring lives in buildApp so tests synthesize the same app.
buildApp(new App());
