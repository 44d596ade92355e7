using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class FileExports : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "File",
                table: "export_profiles",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "file_runs",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    OrganizationId = table.Column<long>(type: "INTEGER", nullable: false),
                    ProfileId = table.Column<long>(type: "INTEGER", nullable: false),
                    RouteIndex = table.Column<int>(type: "INTEGER", nullable: false),
                    RouteName = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Day = table.Column<string>(type: "TEXT", maxLength: 10, nullable: false),
                    Status = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Trigger = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Round = table.Column<int>(type: "INTEGER", nullable: false),
                    Attempts = table.Column<int>(type: "INTEGER", nullable: false),
                    Rows = table.Column<int>(type: "INTEGER", nullable: true),
                    Bytes = table.Column<long>(type: "INTEGER", nullable: true),
                    FileName = table.Column<string>(type: "TEXT", maxLength: 300, nullable: true),
                    Content = table.Column<byte[]>(type: "BLOB", nullable: true),
                    LastError = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    DueAt = table.Column<long>(type: "INTEGER", nullable: false),
                    FirstDueAt = table.Column<long>(type: "INTEGER", nullable: false),
                    LeaseOwner = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    LeaseUntil = table.Column<long>(type: "INTEGER", nullable: true),
                    LastAttemptAt = table.Column<long>(type: "INTEGER", nullable: true),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    CompletedAt = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_file_runs", x => x.Id);
                    table.ForeignKey(
                        name: "FK_file_runs_export_profiles_ProfileId",
                        column: x => x.ProfileId,
                        principalTable: "export_profiles",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_order_events_OrganizationId_OccurredAt",
                table: "order_events",
                columns: new[] { "OrganizationId", "OccurredAt" });

            migrationBuilder.CreateIndex(
                name: "IX_file_runs_OrganizationId_ProfileId_Id",
                table: "file_runs",
                columns: new[] { "OrganizationId", "ProfileId", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_file_runs_ProfileId_RouteIndex_Day",
                table: "file_runs",
                columns: new[] { "ProfileId", "RouteIndex", "Day" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_file_runs_pending_DueAt",
                table: "file_runs",
                column: "DueAt",
                filter: "\"Status\" = 'pending'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "file_runs");

            migrationBuilder.DropIndex(
                name: "IX_order_events_OrganizationId_OccurredAt",
                table: "order_events");

            migrationBuilder.DropColumn(
                name: "File",
                table: "export_profiles");
        }
    }
}
