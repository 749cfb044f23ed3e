# egress-gate: multi-stage build, non-root runtime.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production EGRESS_CONFIG=/etc/egress-gate/egress.yaml
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY allowlists ./allowlists
COPY config/docker.yaml /etc/egress-gate/egress.yaml
RUN mkdir -p /var/lib/egress-gate /app/certs && chown -R node:node /var/lib/egress-gate /app/certs
USER node
EXPOSE 3128 3129
VOLUME ["/var/lib/egress-gate"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3129/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
