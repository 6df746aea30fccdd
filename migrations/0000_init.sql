CREATE TABLE "desktop_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"desktop_id" text NOT NULL,
	"seq" integer NOT NULL,
	"from_status" text,
	"to_status" text NOT NULL,
	"event" text NOT NULL,
	"actor" text NOT NULL,
	"reason" text NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "desktops" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"name" text NOT NULL,
	"plan" text NOT NULL,
	"cpu_cores" integer NOT NULL,
	"memory_mb" integer NOT NULL,
	"protocol" text NOT NULL,
	"status" text NOT NULL,
	"status_message" text,
	"error_message" text,
	"site_id" text NOT NULL,
	"vm_id" integer,
	"node" text,
	"ip_address" text,
	"connection_id" text,
	"created_by" text NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"last_accessed_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "sites" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"key_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"last_connected_at" timestamp with time zone,
	"last_disconnected_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" text PRIMARY KEY NOT NULL,
	"max_desktops" integer,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "desktop_events_desktop_seq_idx" ON "desktop_events" USING btree ("desktop_id","seq");--> statement-breakpoint
CREATE INDEX "desktops_user_status_idx" ON "desktops" USING btree ("user_id","status");--> statement-breakpoint
CREATE INDEX "desktops_status_idx" ON "desktops" USING btree ("status","updated_at");--> statement-breakpoint
CREATE INDEX "desktops_created_by_idx" ON "desktops" USING btree ("created_by");